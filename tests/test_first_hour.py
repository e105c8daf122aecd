"""A new user's first hour (issue 23): the hints obskit prints are right for the environment
at hand, and the small things a first session runs into behave. Each runs the real
`obskit` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from conftest import obskit_cmd


def test_init_leaves_the_replication_factor_to_follow_replicas(run_obskit, tmp_path):
    run_obskit("init", check=True)
    spec = yaml.safe_load((tmp_path / "obskit.yaml").read_text())
    assert "replication_factor" not in spec["mimir"]
    # What the README and every --help suggest works on the starter spec.
    run_obskit("render", "--set", "mimir.replicas=1", check=True)
    run_obskit("config", "show", env={"OBSKIT__MIMIR__REPLICAS": "1"}, check=True)


def test_init_into_a_folder_it_cannot_write_is_a_usage_error(run_obskit):
    proc = run_obskit("init", "--force", "--path", "/sys/obskit-test/obskit.yaml")
    assert proc.returncode == 2, proc.stderr
    assert "cannot write /sys/obskit-test/obskit.yaml" in proc.stderr and "unexpected" not in proc.stderr
    proc = run_obskit("init", "--force", "--path", "/proc/obskit.yaml")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_init_elsewhere_suggests_a_render_that_reads_that_file(run_obskit, tmp_path):
    proc = run_obskit("init", "--path", "sub/x.yaml", check=True)
    assert "`obskit --spec sub/x.yaml render`" in proc.stdout, proc.stdout
    # The suggestion, run as written, renders that file.
    run_obskit("--spec", "sub/x.yaml", "render", check=True)
    plain = run_obskit("init", "--path", "obskit.yaml", check=True)
    assert "Next: `obskit render`" in plain.stdout


def test_piping_into_head_exits_0_quietly(tmp_path):
    (tmp_path / "obskit.yaml").write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")}
    cmd = " ".join(obskit_cmd())
    proc = subprocess.run(f"set -o pipefail; {cmd} config show --json | head -c 0", shell=True,
                          executable="/bin/bash", cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_images_is_refused_by_the_process_runtime(run_obskit):
    proc = run_obskit("up", "--runtime", "process", "--images", "--no-verify")
    assert proc.returncode == 2, proc.stderr
    assert "--images" in proc.stderr and "process" in proc.stderr


def test_secrets_hints_carry_the_environment(run_obskit, tmp_path):
    proc = run_obskit("secrets", "show", "--env", "process")
    assert proc.returncode == 2 and "`obskit up --env process`" in proc.stderr
    secrets = tmp_path / ".obskit" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "process.json").write_text(json.dumps({"grafana-admin-password": "x"}))
    proc = run_obskit("secrets", "show", "--env", "process", check=True)
    assert "`obskit secrets show NAME --env process`" in proc.stdout
    proc = run_obskit("secrets", "show", "nothing-like-it", "--env", "process")
    assert "`obskit secrets show --env process`" in proc.stderr


def test_check_json_is_one_object_on_failure_too(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("environments:\n  local: {kind: compose}\n")
    proc = run_obskit("check", "--json", "--env", "nowhere")
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert data["ok"] is False and "nowhere" in data["error"]
