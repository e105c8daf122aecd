"""The local stack end to end, with Docker: up -> verify -> tenant isolation ->
idempotent up -> a spec change recreates only what changed -> restart keeps data -> down.

Every test uses its own project name and free host ports, and always tears down.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from obskit.project import Project
from obskit.spec.load import load_spec
from obskit.stack import endpoints
from obskit.verify import cases_for, query_logs, run_verify

from e2e.helpers import obskit

pytestmark = pytest.mark.docker


def container_ids(cwd: Path) -> dict[str, str]:
    from python_on_whales import DockerClient

    spec = load_spec(cwd / "obskit.yaml", environ={})
    project = Project.of(spec)
    docker = DockerClient(compose_project_name=project.project_name("local"))
    return {c.name: c.id for c in docker.container.list(all=True,
            filters={"label": f"com.docker.compose.project={project.project_name('local')}"})}


def test_lifecycle(project_dir):
    up = json.loads(obskit(project_dir, "up", "--json").stdout)
    assert up["verify"] and all(o["ok"] for o in up["verify"]), up["verify"]
    assert {o["kind"] for o in up["verify"]} >= {"logs", "metrics", "isolation_logs", "grafana_datasources"}
    # `up` left its annotation in the stack's Grafana (through the gateway, in the real image).
    assert up["annotation"]["written"], up["annotation"]

    status = json.loads(obskit(project_dir, "status", "--json").stdout)
    by_service = {s["service"]: s for s in status}
    assert by_service["gateway"]["health"] == "healthy"
    assert by_service["create-buckets"]["state"] == "exited" and by_service["create-buckets"]["exit_code"] == 0
    assert all(s["state"] == "running" for n, s in by_service.items() if n != "create-buckets")

    # A marker we will look for after a restart.
    project = Project.of(load_spec(project_dir / "obskit.yaml", environ={}))
    ep = endpoints(project, "local")
    grafana = ep.session()
    grafana.auth = ep.grafana_admin
    found = grafana.get(f"{ep.grafana}/api/annotations", params={"tags": ["obskit", "obskit-up"], "matchAny": "false"},
                        timeout=15).json()
    assert any("obskit up (compose): verify passed" in a["text"] and "env:local" in a["tags"] for a in found), found
    outcome = run_verify(ep, cases_for(project.spec, ["logs"]))[0]
    assert outcome.ok, outcome.detail
    marker = outcome.detail.split('|= "')[1].rstrip('"')

    # Idempotent: nothing recreated.
    before = container_ids(project_dir)
    started = time.monotonic()
    obskit(project_dir, "up", "--no-verify")
    assert container_ids(project_dir) == before
    print(f"second up took {time.monotonic() - started:.1f}s")

    # A Loki setting changes: only Loki is recreated.
    spec_file = project_dir / "obskit.yaml"
    spec_file.write_text(spec_file.read_text() + "loki:\n  log_level: debug\n")
    obskit(project_dir, "up", "--no-verify")
    after = container_ids(project_dir)
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed and all("-loki-" in name for name in changed), changed
    # The gateway was not restarted, yet it reaches the new Loki container (it re-resolves
    # the name "loki"; a recreated container may get a new address).
    outcome = run_verify(ep, cases_for(project.spec, ["logs"]), deadline_seconds=120)[0]
    assert outcome.ok, outcome.detail

    # Data survives down/up.
    obskit(project_dir, "down")
    obskit(project_dir, "up", "--no-verify")
    query = '{service_name="obskit-verify"} |= "%s"' % marker
    deadline = time.monotonic() + 120
    while not query_logs(ep, ep.tenants[0], query):
        assert time.monotonic() < deadline, "the log line did not survive down/up"
        time.sleep(2)

    # logs reads the containers' output through compose.
    logs = obskit(project_dir, "logs", "gateway").stdout
    assert "nginx" in logs or "GET" in logs, logs[-500:]

    obskit(project_dir, "down", "--volumes")
    assert json.loads(obskit(project_dir, "status", "--json").stdout) == []
    # Nothing of the project is left: no container, network or volume.
    label = f"label=com.docker.compose.project={project.project_name('local')}"
    for kind in (["ps", "-aq"], ["network", "ls", "-q"], ["volume", "ls", "-q"]):
        left = subprocess.run(["docker", *kind, "--filter", label], capture_output=True, text=True, check=True).stdout
        assert left.strip() == "", (kind, left)


def test_unhealthy_service_is_named_with_its_logs(project_dir):
    # Loki's service runs an image that is not Loki (a wrong pin): it exits at once. (The
    # test used to give Loki a 1h retention, assuming Loki refuses it: Loki 3.7.6 starts.)
    from obskit.spec.model import Images

    spec_file = project_dir / "obskit.yaml"
    spec_file.write_text(f"images:\n  loki: {Images().postgres}\n" + spec_file.read_text())
    proc = obskit(project_dir, "up", "--wait-timeout", "180", check=False)
    assert proc.returncode != 0
    assert "service loki is" in proc.stderr and "last 30 log lines" in proc.stderr
    assert "hint:" in proc.stderr and "Traceback" not in proc.stderr


def test_port_conflict_is_found_before_start(project_dir):
    import socket

    spec = load_spec(project_dir / "obskit.yaml", environ={}).spec
    port = spec.environments["local"].ports.gateway_https
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        proc = obskit(project_dir, "up", check=False)
    assert proc.returncode == 2
    assert f"port {port} is already in use" in proc.stderr
    assert "environments.local.ports.gateway_https" in proc.stderr


def test_plugin_fixture_serves_an_app(obskit_stack):
    """What an application's own test looks like with the obskit_stack fixture."""
    import logging

    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": "shop", "service.instance.id": "test"})
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(**obskit_stack.otlp_exporter_config("logs"))))
    log = logging.getLogger("shop")
    log.addHandler(LoggingHandler(logger_provider=logs))
    log.warning("order 42 paid")
    logs.shutdown()

    reader = PeriodicExportingMetricReader(OTLPMetricExporter(**obskit_stack.otlp_exporter_config("metrics")),
                                           export_interval_millis=3_600_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    meters.get_meter("shop").create_counter("shop.orders").add(1)
    reader.force_flush()
    meters.shutdown()

    deadline = time.monotonic() + 60
    while not (obskit_stack.query_logs('{service_name="shop"} |= "order 42"')
               and obskit_stack.query_metrics("shop_orders")):
        assert time.monotonic() < deadline, "the app's telemetry did not arrive"
        time.sleep(2)
    other = obskit_stack.endpoints.tenants[1]
    assert obskit_stack.query_logs('{service_name="shop"}', tenant=other) == []
    assert all(o.ok for o in obskit_stack.verify()), [o.detail for o in obskit_stack.verify() if not o.ok]
