"""`obskit parity`: the same config bytes everywhere, bindings side by side, drift refused."""

from __future__ import annotations

import json

from obskit import bindings
from obskit.parity import compare, parity
from obskit.render import render
from obskit.spec.load import load_spec

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"


def test_local_and_aws_run_identical_configs_and_differ_only_in_bindings():
    resolved = load_spec(FIXTURE, environ={})
    result = parity(resolved, "local", "prod")
    assert result.ok and result.drift == []
    files = render(resolved, "local")
    # Every config file, every image's Dockerfile and the build context's .dockerignore.
    assert result.identical == sorted(p for p in files if p.startswith(("configs/", "images/", ".dockerignore")))
    assert {"images/loki/Dockerfile", "images/gateway/Dockerfile", ".dockerignore"} <= set(result.identical)
    rows = {(r["service"], r["variable"]): r for r in result.bindings}
    assert rows[("grafana", "GF_DATABASE_HOST")] == {
        "service": "grafana", "variable": "GF_DATABASE_HOST", "local": "postgres:5432",
        "prod": "output grafana_database_endpoint"}
    assert rows[("loki", "S3_ACCESS_KEY_ID")]["local"] == "secret object-store-access-key"
    assert rows[("loki", "S3_ACCESS_KEY_ID")]["prod"] == '""'  # AWS: the task role, no keys
    assert rows[("postgres", "POSTGRES_DB")]["prod"] == "-"  # no such service in AWS
    # Only differences are listed.
    assert ("loki", "LOKI_HTTP_PORT") not in rows


def test_drift_in_any_config_file_is_named():
    resolved = load_spec(FIXTURE, environ={})
    a, b = render(resolved, "local"), render(resolved, "prod")
    b = dict(b)
    b["configs/loki/loki.yaml"] = b["configs/loki/loki.yaml"] + b"# edited by hand\n"
    del b["configs/grafana/dashboards/runbooks.json"]
    b["images/mimir/Dockerfile"] = b["images/mimir/Dockerfile"].replace(b"FROM ${BASE}", b"FROM ${BASE}\nRUN true")
    spec = resolved.spec
    result = compare(a, b, bindings.services(spec, "local"), bindings.services(spec, "prod"), "local", "prod")
    assert not result.ok
    drift = {d["path"]: d for d in result.drift}
    assert set(drift) == {"configs/loki/loki.yaml", "configs/grafana/dashboards/runbooks.json", "images/mimir/Dockerfile"}
    assert drift["configs/grafana/dashboards/runbooks.json"]["prod"] is None


def test_parity_command(run_obskit):
    ok = run_obskit("--spec", str(FIXTURE), "parity", "local", "prod", "--json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["ok"] and data["identical"] and data["bindings"]
    human = run_obskit("--spec", str(FIXTURE), "parity", "local", "prod")
    assert "byte-identical in local and prod" in human.stdout
    # The process runtime's machine-local values read as what they are, not as Python objects.
    proc = run_obskit("--spec", str(FIXTURE), "parity", "local", "process", "--json")
    rows = json.loads(proc.stdout)["bindings"]
    local_values = [r["process"] for r in rows if r["process"].startswith("<")]
    assert "<run folder>/logs/gateway-access.log" in local_values, rows
    assert not any("Local(" in (r["local"] + r["process"]) for r in rows)
    assert "Local(" not in run_obskit("--spec", str(FIXTURE), "parity", "local", "process").stdout
    bad = run_obskit("--spec", str(FIXTURE), "parity", "local", "staging")
    assert bad.returncode == 2 and "unknown environment 'staging'" in bad.stderr
