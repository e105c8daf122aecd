"""The process runtime: the stack as supervised processes on 127.0.0.1, no Docker.

Real programs only. Tests that need a program this machine lacks skip and say which.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from obskit import bindings, loopback
from obskit.project import Project
from obskit.render import render
from obskit.runtime import ProcessStack, for_env, pick_environment
from obskit.runtime.process import MissingBinaries, StartFailed, _alive
from obskit.spec.load import load_spec

from conftest import REPO, obskit_cmd, require_tool, sigint_as_a_terminal_gives_it

OTELCOL = ("otelcol-obskit", "otelcol-contrib")


def _otelcol() -> str:
    for name in OTELCOL:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no otelcol-obskit on PATH: build it with collector/build.sh DIR (CI does)")


@pytest.fixture
def tmp_path(tmp_path_factory):
    """A folder every user may enter: as root, the private Postgres runs as the postgres
    user, which cannot enter pytest's own (0700) temporary folders."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="obskit-proc-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _project(tmp_path: Path, *sets: str) -> Project:
    root = tmp_path / "proj"
    root.mkdir(exist_ok=True)
    root.chmod(0o755)
    resolved = load_spec(None, environ={}, use_default_file=False,
                         sets=[f"environments.process.base_port={loopback.free_block()}", *sets])
    return Project.of(resolved, root=root)


def _no_process_left(pids: list[int], ticks: list[int]) -> list[int]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [p for p, t in zip(pids, ticks) if _alive(p, t)]
        if not left:
            return []
        time.sleep(0.1)
    return left


# --------------------------------------------------------------------------- layout


def test_process_environment_is_declared_by_default_and_picked_by_runtime(tmp_path):
    project = _project(tmp_path)
    assert project.spec.environments["process"].kind == "process"
    assert pick_environment(project, None, "process") == "process"
    assert pick_environment(project, None, None) == "local"
    with pytest.raises(Exception) as info:
        pick_environment(project, "local", "process")
    assert "runs with compose, not process" in str(info.value)
    assert isinstance(for_env(project, "process"), ProcessStack)


def test_ports_are_one_block_outside_the_ephemeral_range():
    resolved = load_spec(None, environ={}, use_default_file=False)
    ports = bindings.process_ports(resolved.spec, 19100)
    flat = [p for svc in ports.values() for p in svc.values()]
    assert len(flat) == len(set(flat)), "two services share a port"
    assert min(flat) == 19100 and ports["gateway"]["https"] == 19100
    assert max(flat) < 32768
    # every service of the binding table has its ports
    table = bindings.services(resolved.spec, "process")
    assert set(table) <= set(ports)


def test_a_base_port_in_the_ephemeral_range_is_refused(run_obskit):
    proc = run_obskit("render", "--env", "process", "--set", "environments.process.base_port=40000")
    assert proc.returncode == 2, proc.stderr
    assert "ephemeral range" in proc.stderr and "environments.process.base_port" in proc.stderr


def test_process_configs_are_byte_identical_to_compose_and_aws(aws_spec, run_obskit):
    for other in ("local", "prod"):
        proc = run_obskit("--spec", str(aws_spec), "parity", "process", other, "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["identical"], other


def test_process_bindings_are_pure_and_name_local_values():
    """Rendering stays pure: what only the running machine knows is a `local` binding."""
    resolved = load_spec(None, environ={}, use_default_file=False)
    files = render(resolved, "process")
    table = json.loads(files["bindings.json"])["services"]
    assert table["loki"]["env"]["LOKI_DATA_DIR"] == {"local": "run_dir/data/loki"}
    assert table["gateway"]["env"]["OBSKIT_GW_USER"] == {"local": "user"}
    assert table["otelcol"]["env"]["OTELCOL_HOST_RECEIVERS"] == {"value": "[host_metrics]"}
    assert render(resolved, "process") == files  # deterministic
    assert str(Path.cwd()) not in files["bindings.json"].decode()


# --------------------------------------------------------------------------- programs


def test_missing_programs_are_named_one_line_each_with_exit_3(tmp_path):
    """With none of the stack's programs on PATH, `up` names each one, with how to get it."""
    bare = tmp_path / "bin"
    bare.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")}
    env["PATH"] = f"{bare}:/usr/bin:/bin"
    proc = subprocess.run([sys.executable, "-m", "obskit.cli", "up", "--runtime", "process"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    lines = [line.strip() for line in proc.stderr.splitlines() if line.startswith("  ")]
    named = [line.split(":")[0] for line in lines if not line.startswith("hint")]
    for program in ("loki", "mimir", "otelcol-obskit or otelcol-contrib", "grafana"):
        assert named.count(program) == 1, proc.stderr  # once, even for three Mimir replicas
    assert "environments.process.binaries.loki" in proc.stderr
    assert "collector/build.sh" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / ".obskit" / "run" / "process" / "state.json").exists() or \
        json.loads((tmp_path / ".obskit/run/process/state.json").read_text())["services"] == {}


def test_a_configured_binary_that_is_not_executable_is_named(tmp_path):
    project = _project(tmp_path, "environments.process.binaries.loki=/nonexistent/loki")
    rt = ProcessStack(project, "process")
    with pytest.raises(MissingBinaries) as info:
        rt.processes.plan({})
    assert "/nonexistent/loki (set by environments.process.binaries.loki) is not an executable file" in str(info.value)


# --------------------------------------------------------------------------- supervision


def test_a_service_that_dies_is_named_with_its_log_and_nothing_is_left_running(tmp_path):
    """Loki and Mimir 'binaries' that exit at once: the start fails naming the first one
    with its last log lines, and what had started (the S3 API, Postgres) is stopped."""
    _otelcol()
    require_tool("nginx", "apt-get install nginx")
    require_tool("moto_server", "pip install 'moto[server]'")
    failing = tmp_path / "fail.sh"
    failing.write_text("#!/bin/sh\necho 'obskit-test: this program fails on purpose' >&2\nexit 7\n")
    failing.chmod(0o755)
    project = _project(tmp_path, "environments.process.skip=[grafana]",
                       f"environments.process.binaries.loki={failing}", f"environments.process.binaries.mimir={failing}")
    rt = ProcessStack(project, "process")
    try:
        with pytest.raises(StartFailed) as info:
            rt.up(wait_timeout=120)
    finally:
        state = json.loads((rt.processes.run_dir / "state.json").read_text())["services"]
    text = str(info.value)
    assert "exited" in text and "this program fails on purpose" in text, text
    assert state == {}, "a failed start leaves services recorded as running"
    # Nothing the failed start began is still running (moto and postgres were up).
    started = [line for line in (rt.processes.run_dir / "logs" / "object-store.log").read_text().splitlines()]
    assert any("obskit: starting object-store" in line for line in started)
    assert not _listening(rt.processes.ports["object-store"]["s3"])
    assert not _listening(rt.processes.ports["postgres"]["postgres"])


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _whole_stack_or_skip():
    """Loki, the collector, nginx and moto at least (Grafana and Mimir are left out where absent)."""
    for tool, why in (("loki", "build Loki 3.7 to run the stack"),
                      ("nginx", "apt-get install nginx"), ("moto_server", "pip install 'moto[server]'")):
        require_tool(tool, why)
    _otelcol()


@pytest.mark.binary
def test_up_status_logs_down_keeps_data_and_stops_everything(tmp_path):
    """The whole stack as processes: up (health-gated), verify, status, logs; down stops
    every PID; a second up finds the data pushed before; down --volumes deletes it."""
    _whole_stack_or_skip()
    from obskit.verify import cases_for_endpoints, query_logs, run_verify

    absent = [p for p in ("grafana", "mimir") if not shutil.which(p)]
    project = _project(tmp_path, *([f"environments.process.skip=[{','.join(absent)}]"] if absent else []))
    rt = ProcessStack(project, "process")
    phases: list[str] = []
    try:
        result = rt.up(on_progress=lambda phase, states: phases.append(phase))
        assert any(p.startswith("waiting for") for p in phases)
        states = {s.service: s for s in result.services}
        expected = {"loki", "otelcol", "gateway", "postgres", "object-store"}
        expected |= set() if "mimir" in absent else {"mimir-1", "mimir-2", "mimir-3"}
        assert expected <= set(states), states
        assert all(s.state == "running" and s.health == "healthy" for s in states.values()), states
        ep = rt.endpoints()
        outcomes = run_verify(ep, cases_for_endpoints(project.spec, ep), deadline_seconds=90)
        assert outcomes and all(o.kind != "metrics" for o in outcomes) == ("mimir" in absent)
        assert all(o.ok for o in outcomes), [o.to_json() for o in outcomes if not o.ok]
        marker = next(o for o in outcomes if o.kind == "logs").detail
        assert "loki" in "".join(rt.logs(["loki"], tail=5)) or rt.processes.log_path("loki").stat().st_size > 0

        # A second up with nothing changed restarts nothing.
        pids = {s.service: s.container for s in rt.status()}
        rt.up()
        assert {s.service: s.container for s in rt.status()} == pids

        # A change to Loki's config file (and nothing else) restarts Loki alone.
        base = project.spec.environments["process"].base_port
        changed = Project.of(load_spec(None, environ={}, use_default_file=False, sets=[
            f"environments.process.base_port={base}",
            *([f"environments.process.skip=[{','.join(absent)}]"] if absent else []),
            "loki.log_level=debug"]), root=project.root)
        ProcessStack(changed, "process").up()
        after = {s.service: s.container for s in rt.status()}
        assert after["loki"] != pids["loki"], "Loki kept running with its old config"
        assert {k: v for k, v in after.items() if k != "loki"} == {k: v for k, v in pids.items() if k != "loki"}
        pids = after

        # An object in the local S3 API (versitygw keeps it on disk; moto only in memory).
        import boto3

        values = rt.processes._values()
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{rt.processes.ports['object-store']['s3']}",
                          aws_access_key_id=values["object-store-access-key"],
                          aws_secret_access_key=values["object-store-secret-key"], region_name="us-east-1")
        bucket = project.spec.object_store.buckets.loki_chunks
        s3.put_object(Bucket=bucket, Key="obskit-test/kept", Body=b"kept across down and up")
        durable = shutil.which("versitygw") is not None

        recorded = json.loads((rt.processes.run_dir / "state.json").read_text())["services"]
        assert rt.down()
        left = _no_process_left([r["pid"] for r in recorded.values()], [r["ticks"] for r in recorded.values()])
        assert left == [], f"still running after down: {left}"
        assert rt.status() == []

        # Data survives down/up: the logs verify pushed are still there.
        rt.up()
        ep = rt.endpoints()
        tenant = ep.tenants[0]
        found = query_logs(ep, tenant, '{service_name="obskit-verify"}', since_seconds=3600)
        assert found, f"logs pushed before down were lost ({marker})"
        if durable:
            assert s3.get_object(Bucket=bucket, Key="obskit-test/kept")["Body"].read() == b"kept across down and up"
    finally:
        rt.down(volumes=True)
    assert not (rt.processes.run_dir / "data").exists()


@pytest.mark.binary
def test_ctrl_c_during_up_leaves_nothing_running(tmp_path):
    """SIGINT to `obskit up` while services start: everything it started is stopped."""
    _whole_stack_or_skip()
    root = tmp_path / "proj"
    root.mkdir()
    root.chmod(0o755)
    base = loopback.free_block()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")}
    absent = [p for p in ("grafana", "mimir") if not shutil.which(p)]
    args = [*obskit_cmd(), "up", "--runtime", "process", "--no-verify", "--set", f"environments.process.base_port={base}",
            *(["--set", f"environments.process.skip=[{','.join(absent)}]"] if absent else [])]
    proc = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_a_terminal_gives_it)
    state_file = root / ".obskit" / "run" / "process" / "state.json"
    deadline = time.monotonic() + 60
    recorded: dict = {}
    while time.monotonic() < deadline:  # wait until Loki or Mimir is among the started
        try:
            recorded = json.loads(state_file.read_text())["services"]
        except (OSError, ValueError):
            recorded = {}
        if "loki" in recorded:
            break
        time.sleep(0.1)
    assert "loki" in recorded, "the start never reached Loki"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode != 0
    assert "Traceback" not in err, err
    left = _no_process_left([r["pid"] for r in recorded.values()], [r["ticks"] for r in recorded.values()])
    assert left == [], f"still running after Ctrl-C: {left}"
    assert json.loads(state_file.read_text())["services"] == {}


# --------------------------------------------------------------------------- the collector


def test_collector_components_match_the_rendered_config():
    """collector/components.go registers exactly the component types the config uses."""
    import re

    import yaml

    go = (REPO / "collector" / "components.go").read_text()
    # Component factories (the collector's own telemetry factory is not a config component).
    registered = set(re.findall(r"(\w+)\.NewFactory\(\)", go)) - {"otelconftelemetry"}
    resolved = load_spec(None, environ={}, use_default_file=False)
    files = render(resolved, "process")
    doc = yaml.safe_load(files["configs/otelcol/config.yaml"])
    used = set()
    for section in ("receivers", "processors", "exporters", "extensions"):
        for name in doc.get(section, {}):
            used.add(name.split("/")[0])
    # Go package names of the factories, by config type.
    package_of = {"otlp": "otlpreceiver", "prometheus": "prometheusreceiver", "udp_log": "udplogreceiver",
                  "host_metrics": "hostmetricsreceiver", "awsecscontainermetrics": "awsecscontainermetricsreceiver",
                  "memory_limiter": "memorylimiterprocessor", "batch": "batchprocessor", "resource": "resourceprocessor",
                  "otlp_http": "otlphttpexporter", "health_check": "healthcheckextension"}
    assert used <= set(package_of), f"the config uses types this test does not know: {used - set(package_of)}"
    assert {package_of[u] for u in used} == registered, "components.go and the config disagree"
    # and every collector module in go.mod is at the release main.go names
    release = re.search(r'const version = "([^"]+)"', (REPO / "collector" / "main.go").read_text()).group(1)
    mod = (REPO / "collector" / "go.mod").read_text()
    direct = re.findall(r"^\t(\S+opentelemetry-collector\S*|go\.opentelemetry\.io/collector/\S+) (v0\.\S+)$", mod, re.M)
    assert direct and all(v == f"v{release}" for _, v in direct), direct
    assert resolved.spec.images.otelcol.endswith(f":{release}"), "the collector image is not at the built release"


@pytest.mark.binary
def test_collector_config_validates_runs_and_exports_the_names_dashboards_query(tmp_path):
    """The rendered collector config (same bytes) passes `validate` and runs with the
    process bindings; its own metrics carry the names the dashboards and rules use."""
    exe = _otelcol()
    resolved = load_spec(None, environ={}, use_default_file=False, sets=["collector.scrape_interval=1s"])
    rendered = tmp_path / "env"
    from obskit.render import write_environment

    write_environment(render(resolved, "process"), rendered)
    plan = loopback.plan(resolved.spec, rendered, tmp_path / "run")
    config = plan.config("otelcol", "config.yaml")
    env = {**os.environ, **plan.env["otelcol"]}
    check = subprocess.run([exe, "validate", f"--config={config}"], env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "deprecated" not in check.stderr.lower(), check.stderr
    log = open(tmp_path / "otelcol.log", "wb")
    proc = subprocess.Popen([exe, f"--config={config}"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        health = f"http://127.0.0.1:{plan.ports['otelcol']['health']}/"
        metrics_url = f"http://127.0.0.1:{plan.ports['otelcol']['telemetry']}/metrics"
        deadline = time.monotonic() + 60
        text = ""
        # Host metrics and self-scrapes flow in; with no gateway listening they queue for retry.
        wanted = ("otelcol_process_cpu_seconds", "otelcol_process_memory_rss", "otelcol_exporter_queue_size",
                  "otelcol_exporter_queue_capacity", "otelcol_receiver_accepted_metric_points",
                  "otelcol_receiver_refused_metric_points")
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "otelcol.log").read_text()[-3000:]
            try:
                if requests.get(health, timeout=1).ok:
                    text = requests.get(metrics_url, timeout=2).text
                    if all(f"\n{w}{{" in text or f"\n{w} " in text for w in wanted):
                        break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
        for w in wanted:
            assert w in names, f"{w} not exported; the collector exports: {sorted(n for n in names if n.startswith('otelcol_'))}"
        # Every otelcol_* name a shipped query uses is one the collector really exports (or a
        # counter that only appears on its first event, listed here with why).
        from obskit.checks import shipped_queries

        # Counters that appear with their first event: log records once a log arrives; send
        # and enqueue failures once an export gives up or a queue overflows.
        lazy = {"otelcol_receiver_refused_log_records", "otelcol_exporter_send_failed_log_records",
                "otelcol_exporter_send_failed_metric_points", "otelcol_exporter_enqueue_failed_log_records",
                "otelcol_exporter_enqueue_failed_metric_points"}
        import re

        used = set()
        for _where, _lang, expr in shipped_queries(render(resolved, "process")):
            used |= set(re.findall(r"\botelcol_[a-z_]+", expr))
        assert used, "no shipped query reads the collector's metrics"
        unknown = used - names - lazy
        assert not unknown, f"shipped queries read collector metrics that do not exist: {sorted(unknown)}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    logs = (tmp_path / "otelcol.log").read_text()
    assert "deprecated" not in logs.lower(), [line for line in logs.splitlines() if "deprecated" in line.lower()]


@pytest.mark.binary
def test_the_obskit_stack_fixture_runs_on_the_process_runtime(tmp_path):
    """A user's test file, run by pytest with `--obskit-runtime process`: the fixture brings
    the stack up without Docker, the test pushes and reads back, and nothing is left after."""
    _whole_stack_or_skip()
    user_test = tmp_path / "test_user_app.py"
    user_test.write_text(
        "import uuid\n"
        "from obskit.verify import push_log\n\n"
        "def test_my_app_logs(obskit_stack):\n"
        "    marker = uuid.uuid4().hex\n"
        "    push_log(obskit_stack.endpoints, obskit_stack.endpoints.tenants[0], marker)\n"
        "    import time\n"
        "    for _ in range(60):\n"
        "        if obskit_stack.query_logs(f'{{service_name=\"obskit-verify\"}} |= \"{marker}\"'):\n"
        "            break\n"
        "        time.sleep(0.5)\n"
        "    else:\n"
        "        raise AssertionError('the log never arrived')\n"
        "    assert obskit_stack.verify(['logs'])[0].ok\n"
        "    open('workdir.txt', 'w').write(str(obskit_stack.workdir))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--obskit-runtime", "process",
                           str(user_test)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
    workdir = Path((tmp_path / "workdir.txt").read_text())
    assert not workdir.exists(), "the fixture left its folder behind"
