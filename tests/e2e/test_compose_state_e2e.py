"""The compose runtime on a real engine, as the process runtime behaves: a second `up` says
what it restarted (or that nothing changed); `logs` on a stack with no containers is one
message and exit 2; status, verify and env-vars follow the ports the running stack
published; a project that reuses an old project's name does not start on its Postgres
volume.

Each test uses its own project name and free host ports, and always tears down.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
import uuid

import pytest

from obskit.loopback import free_port

from e2e.helpers import obskit, write_project

pytestmark = pytest.mark.docker


def _up_line(proc: subprocess.CompletedProcess) -> str:
    """The line `up` prints about what it did (to stderr, beside the progress)."""
    lines = [line for line in proc.stderr.splitlines()
             if line.startswith(("nothing changed", "restarted ", "started ", "stopped "))]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def test_never_ran_then_up_twice_then_ports_of_the_running_stack_then_down(project_dir):
    # Never brought up: one sentence, exit 2, and `logs -f` does not wait (the timeout only
    # keeps a regression from hanging the run).
    for args in (["logs"], ["logs", "-f"], ["logs", "gateway", "--follow"]):
        proc = subprocess.run(obskit_args(*args), cwd=project_dir, env=clean_env(), capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.splitlines()[0] == "error: the 'local' stack never ran here: there are no logs yet", proc.stderr
        assert "obskit up --env local" in proc.stderr and "Traceback" not in proc.stderr

    # A one-off --set moves the gateway; later commands are not told.
    moved = free_port()
    one_off = ("--set", f"environments.local.ports.gateway_https={moved}")
    first = obskit(project_dir, "up", "--no-verify", *one_off)
    assert _up_line(first).startswith("started "), _up_line(first)
    assert f"https://localhost:{moved}" in first.stdout

    # What the engine says was recreated is what `up` names. (Other files of the working tree
    # may change between two ups, recreating more: the engine's container ids are the truth.)
    def expected(before: dict[str, str], after: dict[str, str]) -> str:
        restarted = sorted(s for s in after if before.get(s) not in (None, after[s]))
        kept = len(after) - len(restarted)
        if not restarted:
            return f"nothing changed: all {kept} services kept running"
        return f"restarted {', '.join(restarted)} (changed); {kept} unchanged service(s) kept running"

    before = container_ids(project_dir)
    again = obskit(project_dir, "up", "--no-verify", *one_off)
    after = container_ids(project_dir)
    assert _up_line(again) == expected(before, after)

    spec_file = project_dir / "obskit.yaml"
    spec_file.write_text(spec_file.read_text() + "loki:\n  log_level: debug\n")
    changed = obskit(project_dir, "up", "--no-verify", *one_off)
    final = container_ids(project_dir)
    assert final["loki"] != after["loki"]
    assert _up_line(changed) == expected(after, final)

    # status, env-vars and verify use the ports the running stack published.
    status = obskit(project_dir, "status")
    assert f"gateway_https {moved} (spec:" in status.stderr, status.stderr
    env_vars = obskit(project_dir, "env-vars")
    assert f"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=https://localhost:{moved}/otlp/v1/logs" in env_vars.stdout
    verify = obskit(project_dir, "verify", "--only", "logs")
    assert f"gateway_https {moved}" in verify.stderr and "PASS" in verify.stdout, verify.stdout + verify.stderr

    # Brought down: no containers, so no logs (and `logs -f` does not wait for any).
    obskit(project_dir, "down")
    gone = subprocess.run(obskit_args("logs", "-f"), cwd=project_dir, env=clean_env(), capture_output=True,
                          text=True, timeout=300)
    assert gone.returncode == 2 and "has no containers" in gone.stderr.splitlines()[0], gone.stderr


def test_a_reused_project_name_does_not_start_on_the_old_database(tmp_path):
    """Project A comes up and goes down, keeping its volumes. Project B, elsewhere, with the
    same name and its own secrets, must not start Grafana on A's Postgres (whose password
    is A's): `up` stops first, names the volume and what to do, and deletes nothing."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    spec = write_project(first).read_text()
    spec = "project: " + name + "\n" + spec.split("\n", 1)[1]
    (first / "obskit.yaml").write_text(spec)
    (second / "obskit.yaml").write_text(spec)
    volume = f"{name}-local_postgres-data"
    try:
        obskit(first, "up", "--no-verify")
        obskit(first, "down")
        created = json.loads(subprocess.run(["docker", "volume", "inspect", volume], capture_output=True, text=True,
                                            check=True).stdout)[0]["CreatedAt"]
        # B's secrets must be born after the volume by more than the clock slack `up`
        # allows; on a fast machine B would otherwise start within it.
        from obskit.stack import VOLUME_CLOCK_SLACK_SECONDS

        made = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        while dt.datetime.now(dt.timezone.utc) <= made + dt.timedelta(seconds=VOLUME_CLOCK_SLACK_SECONDS + 1):
            time.sleep(1)

        proc = obskit(second, "up", "--no-verify", "--wait-timeout", "180", check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        first_line = proc.stderr.splitlines()[0]
        assert first_line.startswith("error: the data volumes ") and "made before this environment's secrets" in first_line
        left = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={name}-local"],
                              capture_output=True, text=True, check=True).stdout.split()
        assert volume in left and f"{name}-local_object-store-data" in left, left
        assert all(v in first_line for v in left), (left, first_line)  # every one of A's volumes is named
        assert "pq: password authentication failed" in proc.stderr
        assert f"docker volume rm {' '.join(sorted(left))}`" in proc.stderr and "Traceback" not in proc.stderr
        # Nothing was deleted, and nothing of B started.
        for v in left:
            subprocess.run(["docker", "volume", "inspect", v], capture_output=True, check=True)
        assert json.loads(obskit(second, "status", "--json").stdout) == []

        # The way out the hint gives: the volumes removed, B comes up on fresh ones.
        subprocess.run(["docker", "volume", "rm", *left], capture_output=True, check=True)
        obskit(second, "up", "--no-verify")
        # A second up of B is on its own volume now: no complaint.
        obskit(second, "up", "--no-verify")
    finally:
        obskit(second, "down", "--volumes", check=False)
        obskit(first, "down", "--volumes", check=False)


def container_ids(cwd) -> dict[str, str]:
    """service -> container id, as the engine lists the project's containers."""
    from obskit.project import Project
    from obskit.spec.load import load_spec

    project = Project.of(load_spec(cwd / "obskit.yaml", environ={})).project_name("local")
    out = subprocess.run(["docker", "ps", "-a", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}",
                          "--format", '{{.Label "com.docker.compose.service"}} {{.ID}}'],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def obskit_args(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "obskit.cli", *args]


def clean_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")}
