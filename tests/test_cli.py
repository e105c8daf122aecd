"""The CLI end to end, as a user runs it: a real `obskit` subprocess in an empty folder."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from obskit import __version__
from obskit.spec.load import load_spec


def test_version(run_obskit):
    proc = run_obskit("--version", check=True)
    assert proc.stdout.strip() == f"obskit, version {__version__}"


def test_help_imports_no_heavy_library():
    # Speed is measured by benchmarks/, not asserted here; what keeps --help fast is that
    # it imports neither pydantic, jinja2, yaml, rich nor python-on-whales.
    code = (
        "import sys; from obskit.cli import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pydantic', 'jinja2', 'yaml', 'rich', 'python_on_whales', 'cryptography') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_render_in_empty_folder_uses_embedded_default(run_obskit, tmp_path):
    proc = run_obskit("render", check=True)
    out = tmp_path / ".obskit" / "env" / "local"
    assert "Rendered environment 'local' (compose) from embedded default spec into .obskit/env/local" in proc.stdout
    for rel in ("compose/docker-compose.yaml", "configs/loki/loki.yaml", "configs/mimir/mimir.yaml",
                "configs/otelcol/config.yaml", "configs/gateway/templates/nginx.conf.template",
                "configs/grafana/provisioning/datasources/obskit.yaml", "bindings.json", "stamp.json"):
        assert (out / rel).is_file(), rel
        assert rel in proc.stdout
    assert not (tmp_path / "obskit.yaml").exists()  # nothing written back


def test_render_json_and_second_run_changes_nothing(run_obskit):
    first = json.loads(run_obskit("render", "--json", check=True).stdout)
    second = json.loads(run_obskit("render", "--json", check=True).stdout)
    assert first["files"] == second["files"]
    assert first["changed"] and second["changed"] == []


def test_init_writes_a_commented_valid_starter(run_obskit, tmp_path):
    proc = run_obskit("init", check=True)
    path = tmp_path / "obskit.yaml"
    assert "Wrote obskit.yaml" in proc.stdout
    text = path.read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):  # every section is explained by the comment above it
        if line and line[0].isalpha():
            above = next(prev for prev in reversed(lines[:i]) if prev.strip())
            assert above.startswith("#"), f"section {line!r} has no comment"
    for section in ("images:", "tenants:", "operators:", "loki:", "mimir:", "collector:", "grafana:",
                    "gateway:", "object_store:", "environments:", "kind: compose", "#   kind: aws"):
        assert section in text, section
    resolved = load_spec(path, environ={})
    assert list(resolved.spec.environments) == ["local", "process"]
    # the commented AWS example becomes valid once uncommented
    prod = next(i for i, line in enumerate(lines) if line.startswith("  # prod:"))
    uncommented = "\n".join(
        line.replace("  # ", "  ", 1) if i >= prod and line.startswith("  # ") else line
        for i, line in enumerate(lines)
    )
    path.write_text(uncommented)
    assert load_spec(path, environ={}).spec.environments["prod"].kind == "aws"


def test_init_keeps_state_out_of_git(run_obskit, tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("build/")
    proc = run_obskit("init", check=True)
    assert "Added .obskit/ to .gitignore" in proc.stdout
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == ".obskit/"
    (tmp_path / "obskit.yaml").unlink()
    assert "gitignore" not in run_obskit("init", check=True).stdout  # only once


def test_init_refuses_to_overwrite(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("project: mine\n")
    proc = run_obskit("init")
    assert proc.returncode == 2
    assert "already exists; nothing was written" in proc.stderr
    assert (tmp_path / "obskit.yaml").read_text() == "project: mine\n"
    assert run_obskit("init", "--force").returncode == 0


def test_render_other_environment(run_obskit, aws_spec):
    proc = run_obskit("render", "--env", "prod", cwd=aws_spec.parent, check=True)
    out = aws_spec.parent / ".obskit" / "env" / "prod"
    assert "Rendered environment 'prod' (aws)" in proc.stdout
    assert json.loads((out / "bindings.json").read_text())["kind"] == "aws"


def test_config_show_json_names_every_origin(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("loki:\n  log_level: warn\ngrafana:\n  admin_password: env:GF_PW\n")
    proc = run_obskit(
        "config", "show", "--json", "--set", "mimir.replicas=2", "--set", "mimir.replication_factor=2",
        env={"OBSKIT__LOKI__RETENTION_PERIOD": "48h", "GF_PW": "the-actual-password-value"},
        check=True,
    )
    data = json.loads(proc.stdout)
    rows = {r["key"]: r for r in data["values"]}
    assert rows["loki.log_level"] == {"key": "loki.log_level", "value": "warn", "origin": "obskit.yaml:2"}
    assert rows["loki.retention_period"]["origin"] == "environment variable OBSKIT__LOKI__RETENTION_PERIOD"
    assert rows["mimir.replicas"]["value"] == 2 and rows["mimir.replicas"]["origin"] == "command line (--set)"
    assert rows["gateway.client_max_body_size"]["origin"] == "default"
    assert rows["grafana.admin_password"]["value"] == "<secret env:GF_PW>"
    assert "the-actual-password-value" not in proc.stdout


def test_config_show_table(run_obskit):
    proc = run_obskit("config", "show", check=True)
    assert "mimir.replicas" in proc.stdout and "default" in proc.stdout


def test_bad_input_is_one_message_exit_2_and_writes_nothing(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("tenants:\n  - name: apps\n  - name: apps\n")
    proc = run_obskit("render")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: obskit.yaml:3: tenants[1].name: duplicate tenant 'apps'")
    assert "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / ".obskit").exists()


def test_unknown_environment_exit_2(run_obskit, tmp_path):
    proc = run_obskit("render", "--env", "staging")
    assert proc.returncode == 2
    assert "unknown environment 'staging' (declared: local, process)" in proc.stderr
    assert not (tmp_path / ".obskit").exists()


def test_invalid_yaml_names_the_line(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("project: x\nmimir:\n  replicas: [1\n")
    proc = run_obskit("render")
    assert proc.returncode == 2
    assert "obskit.yaml:4: invalid YAML" in proc.stderr or "obskit.yaml:3: invalid YAML" in proc.stderr


def test_unreadable_spec_path(run_obskit, tmp_path):
    proc = run_obskit("--spec", str(tmp_path / "missing.yaml"), "render")
    assert proc.returncode == 2
    assert "spec file not found" in proc.stderr


def test_debug_shows_the_traceback(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("nope: 1\n")
    proc = run_obskit("--debug", "render")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_check_command_runs_the_tools(run_obskit):
    proc = run_obskit("check", "--json")
    results = {r["name"]: r for r in json.loads(proc.stdout)}
    assert results["parse"]["status"] == "pass"
    assert results["bindings"]["status"] == "pass"
    assert proc.returncode == (1 if any(r["status"] == "fail" for r in results.values()) else 0)
    assert all(r["status"] in ("pass", "skip") for r in results.values()), results


def test_spec_from_environment_variable(run_obskit, tmp_path):
    other = tmp_path / "elsewhere.yaml"
    other.write_text("project: elsewhere\n")
    run_obskit("render", env={"OBSKIT_SPEC": str(other)}, check=True)
    compose = yaml.safe_load((tmp_path / ".obskit/env/local/compose/docker-compose.yaml").read_text())
    assert compose["name"] == "elsewhere-local"
