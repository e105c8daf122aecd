"""An alert, end to end, with Docker: synthetic metrics meet a rule's condition, Grafana
fires, and the notification reaches a webhook sink on the host within the rule's
evaluation window plus a margin. Also: Grafana lists every provisioned datasource as
healthy, every dashboard and every rule (the verify checks)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from obskit.project import Project
from obskit.spec.load import load_spec
from obskit.stack import endpoints
from obskit.verify import exporter_kwargs

from e2e.helpers import obskit, write_project

pytestmark = pytest.mark.docker

INTERVAL_S, MARGIN_S = 10, 120
SINK_ENV = {"E2E_SINK_TOKEN": "e2e-token"}  # the rule is evaluated every 10 s; Grafana may take a while to load it


class Sink:
    """Records the JSON bodies Grafana's webhook contact point posts."""

    def __init__(self, host: str) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((time.monotonic(), self.headers.get("Authorization"), json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def bridge_address() -> str:
    """Where containers reach the host: docker0's gateway on Linux; loopback elsewhere
    (Docker Desktop forwards host.docker.internal to it)."""
    out = subprocess.run(["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 and sys.platform.startswith("linux") and out.stdout.strip() else "127.0.0.1"


@pytest.fixture
def alerting_project(tmp_path):
    sink = Sink(bridge_address())
    write_project(tmp_path, extra=(
        "alerting:\n"
        "  rules:\n"
        "    - name: E2eSyntheticHigh\n"
        "      expr: max(obskit_e2e_synthetic)\n"
        "      threshold: 0.5\n"
        "      for: 0s\n"
        f"      interval: {INTERVAL_S}s\n"
        "      severity: critical\n"
        "      team: e2e\n"
        "      summary: The synthetic e2e gauge is above 0.5\n"
        "      description: Raised on purpose by the alerting end-to-end test.\n"
        "      runbook_url: https://example.com/runbooks/e2e\n"
        "  contact_points:\n"
        "    - name: sink\n"
        "      type: webhook\n"
        f"      url: http://host.docker.internal:{sink.port}/alerts\n"
        "      authorization_credentials: env:E2E_SINK_TOKEN\n"
        "  policy:\n"
        "    receiver: sink\n"
        "    group_wait: 1s\n"
        "    group_interval: 10s\n"
    ))
    try:
        yield tmp_path, sink
    finally:
        obskit(tmp_path, "down", "--volumes", check=False, env=SINK_ENV)
        sink.stop()


def push_gauge(ep, tenant: str, value: float) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
    from opentelemetry.sdk.resources import Resource

    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"service.name": "obskit-e2e"}), metric_readers=[reader])
    provider.get_meter("e2e").create_gauge("obskit.e2e.synthetic").set(value)
    data = reader.get_metrics_data()
    result = OTLPMetricExporter(**exporter_kwargs(ep, tenant, "metrics")).export(data)
    provider.shutdown()
    assert result == MetricExportResult.SUCCESS


def test_an_induced_condition_notifies_the_webhook_within_its_window(alerting_project):
    cwd, sink = alerting_project
    up = json.loads(obskit(cwd, "up", "--json", env=SINK_ENV).stdout)
    by_kind = {o["kind"]: o for o in up["verify"]}
    for kind in ("grafana_datasources", "grafana_dashboards", "grafana_alerting"):
        assert by_kind[kind]["ok"], by_kind[kind]

    project = Project.of(load_spec(cwd / "obskit.yaml", environ={}))
    ep = endpoints(project, "local")
    start = time.monotonic()
    deadline = start + INTERVAL_S + MARGIN_S
    while time.monotonic() < deadline and not sink.received:
        push_gauge(ep, "apps", 1.0)  # the first tenant: the rule reads it
        time.sleep(5)
    assert sink.received, f"no notification within {INTERVAL_S + MARGIN_S} s"
    arrived, authorization, body = sink.received[0]
    assert authorization == "Bearer e2e-token"
    alert = body["alerts"][0]
    assert alert["status"] == "firing"
    assert alert["labels"]["alertname"] == "E2eSyntheticHigh"
    assert alert["labels"]["severity"] == "critical" and alert["labels"]["team"] == "e2e"
    assert alert["annotations"]["runbook_url"] == "https://example.com/runbooks/e2e"
    assert "The synthetic e2e gauge is above 0.5" in body["message"]  # obskit's message template
    print(f"notified {arrived - start:.1f} s after the first push")
