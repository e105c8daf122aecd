"""Rendering: pure, deterministic, golden, parity between environments, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from obskit.errors import OutputError
import yaml

from obskit import bindings
from obskit.checks import binding_problems, parse_problems, referenced_vars
from obskit.errors import EnvironmentNotFound
from obskit.render import render, write_environment
from obskit.spec.load import load_spec

GOLDEN = Path(__file__).parent / "golden" / "local"
UPDATE = os.environ.get("OBSKIT_UPDATE_GOLDEN") == "1"


def load(path=None, sets=()):
    return load_spec(path, sets=sets, environ={}, use_default_file=path is not None)


@pytest.fixture(scope="module")
def local_files():
    return render(load(), "local")


def test_render_is_deterministic():
    a = render(load(), "local")
    b = render(load(), "local")
    assert a == b
    assert list(a) == sorted(a)


def test_render_matches_golden(local_files):
    """The default local environment, byte for byte. Update on purpose with
    OBSKIT_UPDATE_GOLDEN=1 and review the diff."""
    if UPDATE:
        import shutil

        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, data in local_files.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_bytes(data)
    golden = {p.relative_to(GOLDEN).as_posix(): p.read_bytes() for p in GOLDEN.rglob("*") if p.is_file()}
    assert sorted(golden) == sorted(local_files), "file set differs from tests/golden"
    for rel, data in local_files.items():
        assert data == golden[rel], f"{rel} differs from tests/golden/local/{rel}"


def test_no_timestamps_or_secrets_in_output(local_files):
    blob = b"\n".join(local_files.values())
    assert b"BEGIN PRIVATE KEY" not in blob and b"{SSHA}" not in blob
    stamp = json.loads(local_files["stamp.json"])
    assert set(stamp) == {"obskit_version", "environment", "kind", "spec_sha256", "config_hashes", "files"}
    import re

    assert not re.search(rb"\d{4}-\d{2}-\d{2}T\d{2}:", blob)  # no timestamps anywhere


def test_every_rendered_file_parses(local_files):
    assert parse_problems(local_files) == []


def test_only_j2_files_are_templates(local_files):
    # Dashboards, scripts and static provisioning are copied byte for byte.
    from obskit.resources import data_root

    for rel, data in local_files.items():
        source = data_root() / rel
        if rel.startswith(("configs/", "compose/")) and source.is_file():
            assert data == source.read_bytes(), rel
    assert "configs/gateway/templates/_auth" not in " ".join(local_files)  # partials stay out


def test_every_reference_is_bound_and_every_binding_used(local_files):
    spec = load().spec
    assert binding_problems(local_files, bindings.services(spec, "local")) == []
    assert binding_problems(render(load(), "process"), bindings.services(spec, "process")) == []


def test_binding_check_catches_an_unbound_reference(local_files):
    spec = load().spec
    broken = dict(local_files)
    broken["configs/loki/loki.yaml"] += b"\nextra: ${LOKI_NOT_BOUND}\n"
    assert binding_problems(broken, bindings.services(spec, "local")) == [
        "loki: LOKI_NOT_BOUND is referenced by configs/loki but not bound"
    ]


def test_reference_extraction_per_component():
    assert referenced_vars("configs/loki/loki.yaml", "a: ${A}\n# ${COMMENT}\nb: \"${B}\"") == {"A", "B"}
    assert referenced_vars("configs/otelcol/config.yaml", "x: ${env:X}\ny: ${Y_NOT_ENV}") == {"X"}
    assert referenced_vars("configs/grafana/provisioning/x.yaml", "u: $URL\nq: $${__value.raw} $$LITERAL") == {"URL"}
    assert referenced_vars("configs/gateway/templates/x.template", "listen ${OBSKIT_A}; $remote_user") == {"OBSKIT_A"}


# --------------------------------------------------------------------------- parity


def test_parity_local_and_aws_configs_are_byte_identical(aws_spec):
    resolved = load(aws_spec)
    local = render(resolved, "local")
    prod = render(resolved, "prod")
    configs_local = {k: v for k, v in local.items() if k.startswith("configs/")}
    configs_prod = {k: v for k, v in prod.items() if k.startswith("configs/")}
    assert configs_local and configs_local == configs_prod
    # ... and only the binding tables differ.
    assert local["bindings.json"] != prod["bindings.json"]
    b_local, b_prod = json.loads(local["bindings.json"]), json.loads(prod["bindings.json"])
    assert b_local["kind"] == "compose" and b_prod["kind"] == "aws"
    assert "compose/docker-compose.yaml" in local and "compose/docker-compose.yaml" not in prod
    assert binding_problems(prod, bindings.services(resolved.spec, "prod")) == []


def test_parity_binding_tables_say_what_differs(aws_spec):
    resolved = load(aws_spec)
    local = bindings.services(resolved.spec, "local")
    prod = bindings.services(resolved.spec, "prod")
    assert local["loki"].env["S3_ENDPOINT"] == "object-store:9000"
    assert prod["loki"].env["S3_ENDPOINT"] == "s3.eu-west-1.amazonaws.com"
    assert prod["loki"].env["LOKI_BUCKET_CHUNKS"] == "acme-obs-prod-loki-chunks"
    assert prod["loki"].env["S3_ACCESS_KEY_ID"] == ""  # the task role is used in AWS
    assert prod["grafana"].env["GF_DATABASE_HOST"] == bindings.Output("grafana_database_endpoint")
    assert prod["gateway"].env["OBSKIT_GW_PUBLIC_URL"] == "https://obs.example.com"
    assert set(local) - set(prod) == {"postgres", "object-store"}  # RDS and S3 replace them


def test_configs_never_see_the_environment(aws_spec):
    # A change to an environment's settings changes bindings, never a config file.
    a = render(load(aws_spec), "local")
    b = render(load(aws_spec, sets=["environments.local.ports.gateway_https=9443"]), "local")
    assert {k: v for k, v in a.items() if k.startswith("configs/")} == {
        k: v for k, v in b.items() if k.startswith("configs/")
    }
    assert a["compose/docker-compose.yaml"] != b["compose/docker-compose.yaml"]


def test_spec_changes_reach_configs():
    base = render(load(), "local")
    changed = render(load(sets=["loki.retention_period=48h"]), "local")
    assert base["configs/loki/loki.yaml"] != changed["configs/loki/loki.yaml"]
    assert b"retention_period: 48h" in changed["configs/loki/loki.yaml"]
    assert base["configs/mimir/mimir.yaml"] == changed["configs/mimir/mimir.yaml"]
    hashes_a = json.loads(base["stamp.json"])["config_hashes"]
    hashes_b = json.loads(changed["stamp.json"])["config_hashes"]
    assert {k for k in hashes_a if hashes_a[k] != hashes_b[k]} == {"loki"}


def test_unknown_environment_renders_nothing():
    with pytest.raises(EnvironmentNotFound):
        render(load(), "staging")


# --------------------------------------------------------------------------- content


def test_loki_config_has_what_the_stack_needs(local_files):
    cfg = yaml.safe_load(local_files["configs/loki/loki.yaml"])
    assert cfg["auth_enabled"] is True
    period = cfg["schema_config"]["configs"][0]
    assert (period["store"], period["schema"], period["object_store"]) == ("tsdb", "v13", "s3")
    assert cfg["common"]["ring"]["kvstore"]["store"] == "memberlist"
    assert cfg["ingester"]["lifecycler"]["min_ready_duration"] == "0s"
    assert cfg["compactor"]["delete_request_store"] == "s3"  # required with retention
    labels = cfg["distributor"]["otlp_config"]["default_resource_attributes_as_index_labels"]
    assert "service.name" in labels and "service.instance.id" not in labels


def test_mimir_config_has_what_the_stack_needs(local_files):
    cfg = yaml.safe_load(local_files["configs/mimir/mimir.yaml"])
    assert cfg["multitenancy_enabled"] is True
    assert cfg["common"]["storage"]["backend"] == "s3"
    assert {cfg["blocks_storage"]["s3"]["bucket_name"], cfg["ruler_storage"]["s3"]["bucket_name"],
            cfg["alertmanager_storage"]["s3"]["bucket_name"]} == {
        "${MIMIR_BUCKET_BLOCKS}", "${MIMIR_BUCKET_RULER}", "${MIMIR_BUCKET_ALERTMANAGER}"}
    assert cfg["ingester"]["ring"]["replication_factor"] == 3
    assert len(cfg["memberlist"]["join_members"]) == 3
    assert cfg["limits"]["otel_metric_suffixes_enabled"] is False
    # Shipped heads are queryable at once: the store is asked for recent data too.
    assert cfg["querier"]["query_store_after"] == "0s"
    assert cfg["blocks_storage"]["bucket_store"]["ignore_blocks_within"] == "0s"


def test_data_is_flushed_on_shutdown_only_where_storage_dies_with_the_container(aws_spec, local_files):
    loki = yaml.safe_load(local_files["configs/loki/loki.yaml"])
    mimir = yaml.safe_load(local_files["configs/mimir/mimir.yaml"])
    assert loki["ingester"]["wal"]["flush_on_shutdown"] == "${LOKI_FLUSH_ON_SHUTDOWN}"
    assert mimir["blocks_storage"]["tsdb"]["flush_blocks_on_shutdown"] == "${MIMIR_FLUSH_ON_SHUTDOWN}"
    spec = load(aws_spec).spec
    for env_name, flush in (("local", "false"), ("prod", "true")):  # compose volumes vs Fargate task storage
        services = bindings.services(spec, env_name)
        assert services["loki"].env["LOKI_FLUSH_ON_SHUTDOWN"] == flush, env_name
        assert {services[r].env["MIMIR_FLUSH_ON_SHUTDOWN"] for r in spec.mimir_replicas} == {flush}, env_name


def test_collector_config_uses_current_component_names(local_files):
    cfg = yaml.safe_load(local_files["configs/otelcol/config.yaml"])
    assert set(cfg["exporters"]) == {"otlp_http/gateway", "otlp_http/ops"}  # not the deprecated otlphttp
    for pipeline in cfg["service"]["pipelines"].values():
        assert pipeline["processors"][0] == "memory_limiter"
        assert pipeline["processors"][-1] == "batch"
    exporter = cfg["exporters"]["otlp_http/gateway"]
    # Basic auth as a ready-made header (the basicauth extension is not served at the
    # pinned collector release): the value is a derived secret, never rendered.
    assert exporter["headers"] == {"Authorization": "${env:OTELCOL_GATEWAY_AUTHORIZATION}"}
    # The gateway's access logs go to the operators' tenant through their own writer.
    assert cfg["service"]["pipelines"]["logs/gateway"]["exporters"] == ["otlp_http/ops"]
    assert cfg["exporters"]["otlp_http/ops"]["headers"] == {"Authorization": "${env:OTELCOL_OPS_AUTHORIZATION}"}
    assert exporter["tls"]["ca_pem"] == "${env:OTELCOL_GATEWAY_CA_PEM}"
    assert cfg["service"]["extensions"] == ["health_check"]
    assert "udp_log/gateway" in cfg["receivers"]  # not the deprecated udplog alias


def test_collector_scrapes_every_stack_component_into_the_operators_tenant(local_files):
    cfg = yaml.safe_load(local_files["configs/otelcol/config.yaml"])
    scrape = {job["job_name"]: job for job in cfg["receivers"]["prometheus/self"]["config"]["scrape_configs"]}
    assert set(scrape) == {"loki", "mimir", "grafana", "otelcol"}
    assert scrape["mimir"]["static_configs"][0]["targets"] == [
        "${env:OTELCOL_SCRAPE_MIMIR_1}", "${env:OTELCOL_SCRAPE_MIMIR_2}", "${env:OTELCOL_SCRAPE_MIMIR_3}"]
    assert scrape["grafana"]["metrics_path"] == "/grafana/metrics"
    # Upstream metric names are kept: the stack dashboard and rules query them as they are.
    assert not any(job.get("trim_metric_suffixes") for job in scrape.values())
    pipelines = cfg["service"]["pipelines"]
    assert pipelines["metrics/self"]["exporters"] == ["otlp_http/ops"]
    # Host metrics: the receivers come from the environment (host metrics where the
    # collector sees a host, ECS task metadata on Fargate), into the operators' tenant.
    assert pipelines["metrics/host"]["receivers"] == "${env:OTELCOL_HOST_RECEIVERS}"
    assert pipelines["metrics/host"]["exporters"] == ["otlp_http/ops"]
    cpu = cfg["receivers"]["host_metrics"]["scrapers"]["cpu"]["metrics"]
    assert cpu["system.cpu.utilization"]["enabled"] is True  # off by default upstream
    # Every receiver, processor and exporter a pipeline names is declared, and every
    # declared one is used (the collector refuses unknown ones); the host receivers are
    # used through the binding, which names one of them in every environment.
    used = {kind: {c for p in pipelines.values() for c in ([p[kind]] if isinstance(p[kind], str) else p[kind])}
            for kind in ("receivers", "processors", "exporters")}
    used["receivers"] = (used["receivers"] - {"${env:OTELCOL_HOST_RECEIVERS}"}) | {"host_metrics", "awsecscontainermetrics"}
    for kind, names in used.items():
        assert names == set(cfg[kind]), kind
    bindings = json.loads(local_files["bindings.json"])["services"]["otelcol"]["env"]
    assert bindings["OTELCOL_SCRAPE_LOKI"] == {"value": "loki:3100"}
    assert bindings["OTELCOL_SCRAPE_GRAFANA"] == {"value": "grafana:3000"}
    assert bindings["OTELCOL_HOST_RECEIVERS"] == {"value": "[host_metrics]"}
    # The operators' tenant keeps exact Prometheus names whatever the user tenants use.
    runtime = yaml.safe_load(local_files["configs/mimir/runtime.yaml"])
    assert runtime["overrides"]["ops"] == {"otel_metric_suffixes_enabled": False}


def test_grafana_datasources_have_fixed_uids_and_env_secrets(local_files):
    doc = yaml.safe_load(local_files["configs/grafana/provisioning/datasources/obskit.yaml"])
    assert doc["apiVersion"] == 1
    uids = [d["uid"] for d in doc["datasources"]]
    assert uids == [
        "obskit-apps-logs", "obskit-apps-metrics",
        "obskit-sandbox-logs", "obskit-sandbox-metrics",
        "obskit-ops-logs", "obskit-ops-metrics",
    ]
    assert sum(1 for d in doc["datasources"] if d.get("isDefault")) == 1
    for ds in doc["datasources"]:
        assert ds["secureJsonData"]["basicAuthPassword"].startswith("$OBSKIT_")
        assert "password" not in ds and "basicAuthPassword" not in ds


def test_compose_file_shape(local_files):
    doc = yaml.safe_load(local_files["compose/docker-compose.yaml"])
    assert doc["name"] == "obskit-local"
    services = doc["services"]
    assert {"gateway", "loki", "mimir-1", "mimir-2", "mimir-3", "otelcol", "grafana", "postgres",
            "object-store", "create-buckets", "readiness"} == set(services)
    for name, svc in services.items():
        assert "@" in svc["image"] or ":" in svc["image"].rsplit("/", 1)[-1], name
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        for dep in (svc.get("depends_on") or {}).values():
            assert dep["condition"] in ("service_healthy", "service_completed_successfully", "service_started")
    for name in ("gateway", "loki", "grafana", "postgres", "object-store", "readiness"):
        assert "healthcheck" in services[name], name
    assert services["loki"]["healthcheck"]["test"][:3] == ["CMD", "/usr/bin/loki", "-health"]
    assert services["gateway"]["depends_on"]["readiness"]["condition"] == "service_healthy"
    readiness = services["readiness"]["healthcheck"]["test"][1]
    assert all(f"http://mimir-{i}:8080/ready" in readiness for i in (1, 2, 3))
    assert "/-/healthy" not in local_files["compose/docker-compose.yaml"].decode()
    assert set(doc["volumes"]) >= {"loki-data", "grafana-data", "postgres-data", "mimir-1-data"}


def test_images_are_pinned_in_one_place(local_files):
    spec = load().spec
    compose = yaml.safe_load(local_files["compose/docker-compose.yaml"])
    images = set(spec.images.model_dump().values())
    used = {svc["image"] for svc in compose["services"].values()}
    assert used <= images


# --------------------------------------------------------------------------- writing


def test_write_environment_replaces_whole_and_reports_changes(tmp_path, local_files):
    dest = tmp_path / "env" / "local"
    first = write_environment(local_files, dest)
    assert first.changed == sorted(k for k in local_files if k != "stamp.json")
    again = write_environment(local_files, dest)
    assert again.changed == []
    (dest / "stray.txt").write_text("left over")  # not obskit's: the folder is not replaced over it
    with pytest.raises(OutputError):
        write_environment(local_files, dest)
    assert (dest / "stray.txt").read_text() == "left over"
    (dest / "stray.txt").unlink()
    assert os.stat(dest / "configs/gateway/entrypoint.d/05-obskit-secrets.sh").st_mode & 0o111
    assert not os.stat(dest / "configs/loki/loki.yaml").st_mode & 0o111
    assert sorted(p.name for p in dest.parent.iterdir()) == ["local"]  # no temp folders left


def test_failed_write_leaves_previous_environment_intact(tmp_path, local_files):
    dest = tmp_path / "env" / "local"
    write_environment(local_files, dest)
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    broken = dict(local_files)
    broken["configs/loki"] = b"a file where a folder must be"
    with pytest.raises(OutputError):
        write_environment(broken, dest)
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in dest.parent.iterdir()) == ["local"]
