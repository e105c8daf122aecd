"""The process runtime without the backends: how a program ended (killed, exited with a
code) as `obskit status` shows it, the gateway's access and error logs under `obskit logs
gateway`, and `logs -f` on a stack that never ran. Real processes, started the way `up`
starts them (ProcessRuntime._start, under the supervisor)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from obskit import loopback
from obskit.project import Project
from obskit.runtime.process import ProcessRuntime, Running, ServicePlan
from obskit.spec.load import load_spec

from conftest import obskit_cmd, sigint_as_a_terminal_gives_it


def _runtime(tmp_path: Path) -> ProcessRuntime:
    resolved = load_spec(None, environ={}, use_default_file=False,
                         sets=[f"environments.process.base_port={loopback.free_block()}"])
    rt = ProcessRuntime(Project.of(resolved, root=tmp_path), "process")
    (rt.run_dir / "logs").mkdir(parents=True)
    return rt


def _plan(name: str, argv: list[str]) -> ServicePlan:
    return ServicePlan(name=name, kind="loki", wave=1, argv=argv, env={}, probes=[], stop_timeout=5, start_timeout=5)


def _until_dead(r: Running) -> None:
    for _ in range(500):
        if not r.alive():
            return
        time.sleep(0.02)
    raise AssertionError("the program did not end")


def test_a_program_killed_by_sigkill_is_shown_killed_not_exited(tmp_path):
    rt = _runtime(tmp_path)
    sleeping = rt._start(_plan("loki", ["sleep", "600"]))
    exiting = rt._start(_plan("mimir-1", [sys.executable, "-c", "import sys; sys.exit(3)"]))
    rt._write_state({"loki": sleeping, "mimir-1": exiting})
    try:
        # The recorded PID is the program's own (what a user sees in `ps` and kills).
        assert Path(f"/proc/{sleeping.pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
        os.kill(sleeping.pid, signal.SIGKILL)
        _until_dead(sleeping)
        _until_dead(exiting)
        for _ in range(200):  # the supervisor writes once its waitpid returns
            if sleeping.ended()[0] == "killed" and exiting.ended()[1] is not None:
                break
            time.sleep(0.02)
        states = {s.service: s for s in rt.status()}
        assert (states["loki"].state, states["loki"].exit_code) == ("killed", signal.SIGKILL)
        assert (states["mimir-1"].state, states["mimir-1"].exit_code) == ("exited", 3)
        from obskit.cli import _state_text

        assert _state_text(states["loki"]) == "killed (SIGKILL)"
        assert _state_text(states["mimir-1"]) == "exited (3)"
    finally:
        rt._stop(rt._read_state(), {})


def test_stop_signals_reach_the_program_through_its_supervisor(tmp_path):
    rt = _runtime(tmp_path)
    r = rt._start(_plan("loki", ["sleep", "600"]))
    assert r.group != r.pid  # the supervisor leads the group; the program is in it
    assert os.getpgid(r.pid) == r.group
    rt._stop({"loki": r}, {"loki": (5, signal.SIGTERM)})
    assert not r.alive()
    assert r.ended() == ("killed", signal.SIGTERM)


def test_logs_of_the_gateway_include_its_access_and_error_logs(tmp_path):
    rt = _runtime(tmp_path)
    logs = rt.run_dir / "logs"
    (logs / "gateway.log").write_text("\n--- obskit: starting gateway at 2026-01-01T00:00:00\n")
    (logs / "gateway-access.log").write_text('{"status":200,"path":"/nginx-health"}\n')
    (logs / "gateway-error.log").write_text("2026/01/01 00:00:00 [notice] 1#1: start worker processes\n")
    text = "".join(rt.logs(["gateway"], tail=50))
    assert '{"status":200,"path":"/nginx-health"}' in text and "start worker processes" in text
    assert text.count("obskit: starting gateway") == 1
    assert "gateway access | " in text and "gateway error | " in text


def test_logs_follow_on_a_stack_that_never_ran_says_so(tmp_path, run_obskit):
    (tmp_path / "obskit.yaml").write_text("{}\n")
    proc = subprocess.run([*obskit_cmd(), "logs", "-f", "--runtime", "process"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")})
    assert proc.returncode == 2, proc.stderr
    assert "never ran here" in proc.stderr and "obskit up --env process" in proc.stderr


def test_ctrl_c_in_logs_follow_exits_130(tmp_path):
    rt_root = tmp_path
    (rt_root / "obskit.yaml").write_text("{}\n")
    logs = rt_root / ".obskit" / "run" / "process" / "logs"
    logs.mkdir(parents=True)
    (logs / "loki.log").write_text("a line\n")
    proc = subprocess.Popen([*obskit_cmd(), "logs", "loki", "-f", "--runtime", "process"], cwd=rt_root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")},
                            preexec_fn=sigint_as_a_terminal_gives_it)
    try:
        assert proc.stdout.readline() == "a line\n"  # following now
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130


def test_commands_follow_the_ports_the_running_stack_was_started_on(tmp_path):
    """`up --set environments.process.base_port=N` once: status, verify, load and env-vars
    later read the spec without that --set, and still talk to the stack on N, saying so."""
    from obskit import stack
    from obskit.runtime.process import running_endpoints
    from obskit.secrets import SecretStore

    rt = _runtime(tmp_path)
    moved = loopback.free_block()
    started = ProcessRuntime(rt.project, "process")
    started.base_port = moved  # as `up` with the --set had it
    r = started._start(_plan("loki", ["sleep", "600"]))
    started._write_state({"loki": r})
    try:
        later = ProcessRuntime(rt.project, "process")  # the spec without the --set
        assert later.base_port == rt.base_port != moved
        note = later.follow_running()
        assert later.ports["gateway"]["https"] == moved and f"base_port {moved}" in note
        assert f"`base_port: {moved}`" in note and "obskit.yaml" in note
        SecretStore(rt.project.state_dir, "process").ensure(rt.project.spec)
        from obskit.render import render, write_environment

        write_environment(render(rt.project.resolved, "process"), rt.project.env_dir("process"))
        ep, said = running_endpoints(rt.project, "process", stack.endpoints(rt.project, "process"))
        assert ep.gateway.endswith(f":{moved}") and said == note
        assert {s.service: s for s in later.status()}["loki"].ports[0] == f"127.0.0.1:{later.ports['loki']['http']}"
    finally:
        rt._stop(rt._read_state(), {})
    # Once nothing runs, the spec's ports again.
    assert ProcessRuntime(rt.project, "process").follow_running() is None


def test_a_port_conflict_suggests_the_spec_key_not_a_one_off_set(tmp_path):
    import socket

    from obskit.runtime.process import PortTaken

    rt = _runtime(tmp_path)
    holder = socket.socket()
    holder.bind(("127.0.0.1", rt.ports["gateway"]["https"]))
    holder.listen()
    try:
        with pytest.raises(PortTaken) as caught:
            rt._check_ports([_plan("gateway", ["nginx"])])
    finally:
        holder.close()
    assert "--set" not in caught.value.hint
    assert "environments: {process: {base_port: " in caught.value.hint and "obskit.yaml" in caught.value.hint


def test_up_says_what_it_restarted_started_and_kept():
    from obskit.cli import _up_changes

    assert _up_changes({"kept": ["loki"], "restarted": ["gateway"], "started": [], "stopped": []}) == \
        "restarted gateway (changed); 1 unchanged service(s) kept running"
    assert _up_changes({"kept": ["a", "b"], "restarted": [], "started": [], "stopped": []}) == \
        "nothing changed: all 2 services kept running"
