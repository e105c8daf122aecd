"""Every shipped query is proven on the running stack.

The stack runs as processes (the process runtime, real binaries: Loki, three Mimir
replicas, the collector, the nginx gateway, Postgres, a moto S3 API; Grafana where it is
installed). An application trickles logs and metrics through the collector, the
collector scrapes the stack itself, and then every PromQL and LogQL expression obskit
ships (dashboard panels, alert rules, datasource links, verify cases) runs through the
gateway, as the reader of the tenant its datasource names, against the real Loki and
Mimir. Each must return at least one series. An expression that is empty at rest by
design is listed in obskit/proof/empty_at_rest.yaml with a scenario; the test runs the
scenario and then expects data.

A misspelt metric name is caught: see test_a_misspelt_metric_name_is_caught.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from obskit.checks import shipped_query_targets
from obskit.proof import load_empty_at_rest
from obskit.render import render
from obskit.spec.load import load_spec

from conftest import require_tool

pytestmark = pytest.mark.binary

APP = "proof-app"
SETS = [
    "collector.scrape_interval=2s",
    "collector.batch_timeout=200ms",
]
# Grafana's interval variables, as a dashboard over the last few minutes fills them in.
GRAFANA_VARS = {"__rate_interval": "1m", "__auto": "1m", "__interval": "15s", "__range": "5m"}


@dataclass(frozen=True)
class Shipped:
    where: str
    lang: str
    expr: str
    datasource: str  # uid, or a dashboard variable such as ${metrics}

    @property
    def id(self) -> str:
        return re.sub(r"\s+", " ", f"{self.where}")[:120]


def _shipped() -> list[Shipped]:
    resolved = load_spec(None, environ={}, use_default_file=False, sets=SETS)
    files = render(resolved, "process")
    return [Shipped(*t) for t in shipped_query_targets(files)]


SHIPPED = _shipped()
EMPTY_AT_REST = {e["expr"]: e for e in load_empty_at_rest()}


def needs_grafana(q: Shipped) -> bool:
    return bool(re.search(r"\bgrafana_|job=~?\"grafana", q.expr))


def tenant_of(q: Shipped, tenants: list[str]) -> str:
    """The tenant whose reader the query runs as: the one its datasource uid names; a
    dashboard's datasource variable stands for the application's tenant."""
    m = re.match(r"obskit-(.+)-(logs|metrics)$", q.datasource)
    if m:
        return m.group(1)
    return tenants[0]


def fill_in(expr: str) -> str:
    """Grafana's variables as a dashboard fills them in ($$ is the provisioning escape)."""
    expr = expr.replace("$${", "${")
    for name, value in GRAFANA_VARS.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    for name in ("service_name", "__value.raw"):
        expr = expr.replace("${" + name + "}", APP).replace("$" + name, APP)
    return expr


# --------------------------------------------------------------------------- the stack


class Trickle:
    """An application sending logs and an HTTP server histogram every half second: into
    the first tenant through the collector (OTLP/HTTP to its intake on 127.0.0.1), and into
    every other user tenant straight through the gateway as that tenant's writer."""

    def __init__(self, otlp_http: str, ep) -> None:
        from opentelemetry._logs import LogRecord, SeverityNumber
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        from obskit.verify import exporter_kwargs

        resource = Resource.create({"service.name": APP, "service.instance.id": "proof-1"})
        targets = [({"endpoint": f"{otlp_http}/v1/logs"}, {"endpoint": f"{otlp_http}/v1/metrics"})]
        for tenant in ep.tenants[1:-1]:  # other user tenants (the last is the operators')
            targets.append((exporter_kwargs(ep, tenant, "logs"), exporter_kwargs(ep, tenant, "metrics")))
        self.providers = []
        self.loggers, self.histograms = [], []
        for log_kw, metric_kw in targets:
            logs = LoggerProvider(resource=resource)
            logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(**log_kw), schedule_delay_millis=300))
            reader = PeriodicExportingMetricReader(OTLPMetricExporter(**metric_kw), export_interval_millis=1000)
            metrics = MeterProvider(resource=resource, metric_readers=[reader])
            self.providers += [metrics, logs]
            self.loggers.append(logs.get_logger("proof"))
            self.histograms.append(metrics.get_meter("proof").create_histogram("http.server.request.duration", unit="s"))
        self._LogRecord, self._sev = LogRecord, SeverityNumber
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            status = 500 if i % 10 == 0 else 200
            attrs = {"http.request.method": "GET", "http.route": "/checkout", "http.response.status_code": status}
            for logger, histogram in zip(self.loggers, self.histograms):
                histogram.record(0.01 + (i % 7) / 100, attrs)
                logger.emit(self._LogRecord(
                    timestamp=time.time_ns(), body=f"order {i} handled with status {status}",
                    severity_text="ERROR" if status == 500 else "INFO",
                    severity_number=self._sev.ERROR if status == 500 else self._sev.INFO,
                    attributes={"order": i}))
            self.sent += 1
            self.stop.wait(0.5)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        for provider in self.providers:
            provider.shutdown()


@pytest.fixture(scope="module")
def proof_stack():
    for tool, why in (("loki", "build Loki 3.7 to prove the shipped queries"),
                      ("nginx", "apt-get install nginx"), ("moto_server", "pip install 'moto[server]'")):
        require_tool(tool, why)
    from obskit.testing import NoBinaries, start_process_stack

    try:
        stack = start_process_stack(sets=SETS)
    except NoBinaries as exc:
        pytest.skip(str(exc))
    try:
        otlp = f"http://127.0.0.1:{stack._runtime.processes.ports['otelcol']['http']}"
        with Trickle(otlp, stack.endpoints) as trickle:
            # Long enough for several scrapes and for 1-minute rate windows to hold two samples.
            _wait_for_data(stack, timeout=120)
            time.sleep(20)
            yield stack, trickle
    finally:
        stack.close()


def _wait_for_data(stack, timeout: float) -> None:
    from obskit.verify import query_logs, query_metrics

    ep = stack.endpoints
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            logs = query_logs(ep, ep.tenants[0], f'{{service_name="{APP}"}}', since_seconds=600) and \
                query_logs(ep, "ops", '{service_name="obskit-gateway"}', since_seconds=600)
            metrics = not ep.has_mimir or (
                query_metrics(ep, ep.tenants[0], "http_server_request_duration_count")
                and query_metrics(ep, "ops", 'up{job="otelcol"}'))
            if logs and metrics:
                return
        except Exception:  # noqa: BLE001 - still starting
            pass
        time.sleep(2)
    raise AssertionError("no application or self-monitoring data reached Loki/Mimir within "
                         f"{timeout}s; collector log:\n" + "\n".join(stack._runtime.processes.tail("otelcol", 30)))


def run_query(stack, q: Shipped) -> list:
    from obskit.verify import query_logs, query_metrics

    ep = stack.endpoints
    tenant = tenant_of(q, ep.tenants)
    expr = fill_in(q.expr)
    if q.lang == "promql":
        return query_metrics(ep, tenant, expr)
    return query_logs(ep, tenant, expr, since_seconds=600)


def _has_data(result: list) -> bool:
    return any(r.get("values") or r.get("value") for r in result)


# --------------------------------------------------------------------------- scenarios


def scenario_bad_push(stack) -> None:
    """Records too old for Loki and Mimir, through the collector: both reject them (and
    the collector counts the export as failed, since the rejection is permanent)."""
    port = stack._runtime.processes.ports["otelcol"]["http"]
    old = time.time_ns() - 30 * 24 * 3600 * 10**9  # 30 days
    _push_raw_otlp(f"http://127.0.0.1:{port}", old)


def _push_raw_otlp(base: str, ts_ns: int) -> None:
    import requests
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    logs = ExportLogsServiceRequest()
    rl = logs.resource_logs.add()
    kv = rl.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "proof-too-old"
    rec = rl.scope_logs.add().log_records.add()
    rec.time_unix_nano = ts_ns
    rec.body.string_value = "a line from a month ago"
    metrics = ExportMetricsServiceRequest()
    rm = metrics.resource_metrics.add()
    kv = rm.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "proof-too-old"
    m = rm.scope_metrics.add().metrics.add()
    m.name = "proof_too_old"
    p = m.gauge.data_points.add()
    p.time_unix_nano = ts_ns
    p.as_double = 1.0
    for path, msg in (("/v1/logs", logs), ("/v1/metrics", metrics)):
        r = requests.post(base + path, data=msg.SerializeToString(),
                          headers={"Content-Type": "application/x-protobuf"}, timeout=10)
        assert r.status_code == 200, (path, r.status_code, r.text)


def scenario_flood(stack) -> None:
    """A wrong password (401) and a burst over the sandbox writer's limit (429s)."""
    ep = stack.endpoints
    s = ep.session()
    r = s.get(f"{ep.gateway}/loki/api/v1/labels", auth=(f"{ep.tenants[0]}-read", "wrong-password"), timeout=10)
    assert r.status_code == 401
    user, password = ep.auth(ep.tenants[-1], "write")
    codes = []
    for _ in range(400):
        codes.append(s.post(f"{ep.gateway}/otlp/v1/logs", data=b"", auth=(user, password),
                            headers={"Content-Type": "application/x-protobuf"}, timeout=10).status_code)
        if codes.count(429) >= 5:
            break
    assert 429 in codes, f"no 429 after {len(codes)} requests"


def scenario_collector_export_fail(stack) -> None:
    scenario_bad_push(stack)


def scenario_object_store_errors(stack) -> None:
    """The S3 API stops for a while: Loki and Mimir count failed bucket operations."""
    import signal

    procs = stack._runtime.processes
    state = procs._read_state()
    pid = state["object-store"].pid
    os.killpg(pid, signal.SIGSTOP)  # frozen: requests time out or are refused
    try:
        time.sleep(25)
    finally:
        os.killpg(pid, signal.SIGCONT)


def scenario_cpu_burn(stack) -> None:
    burners = [subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()+40\nwhile time.time()<t: pass"])
               for _ in range(os.cpu_count() or 2)]
    try:
        time.sleep(20)
    finally:
        for b in burners:
            b.kill()


SCENARIO_RUNNERS = {
    "bad_push": scenario_bad_push,
    "flood": scenario_flood,
    "collector_export_fail": scenario_collector_export_fail,
    "object_store_errors": scenario_object_store_errors,
    "cpu_burn": scenario_cpu_burn,
}
_ran: set[str] = set()


def _eventually(stack, q: Shipped, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    result: list = []
    while time.monotonic() < deadline:
        result = run_query(stack, q)
        if _has_data(result):
            return result
        time.sleep(3)
    return result


# --------------------------------------------------------------------------- the proof


@pytest.mark.parametrize("q", SHIPPED, ids=[q.id for q in SHIPPED])
def test_shipped_query_returns_data(proof_stack, q: Shipped):
    stack, _trickle = proof_stack
    if needs_grafana(q) and not stack.endpoints.has_grafana:
        pytest.skip("reads Grafana's own metrics, and no grafana program is installed here")
    if q.lang == "promql" and not stack.endpoints.has_mimir:
        pytest.skip("PromQL: no mimir program is installed here, so the stack runs without Mimir")
    entry = EMPTY_AT_REST.get(q.expr)
    if entry is None:
        result = _eventually(stack, q, 60)
        assert _has_data(result), f"{q.where}: `{fill_in(q.expr)}` returned no data on the running stack"
        return
    runner = SCENARIO_RUNNERS.get(entry["scenario"])
    if runner is None:
        pytest.fail(f"{q.where}: scenario {entry['scenario']} has no runner in this test")
    if entry["scenario"] not in _ran:
        runner(stack)
        _ran.add(entry["scenario"])
    result = _eventually(stack, q, 120)
    assert _has_data(result), (f"{q.where}: `{fill_in(q.expr)}` stayed empty after scenario "
                               f"{entry['scenario']} ({entry['reason']})")


def test_every_empty_at_rest_entry_is_shipped():
    shipped = {q.expr for q in SHIPPED}
    stale = [e["where"] for e in load_empty_at_rest() if e["expr"] not in shipped]
    assert not stale, f"empty_at_rest.yaml lists expressions obskit no longer ships: {stale}"


def test_host_cpu_rule_goes_above_threshold_under_a_cpu_burner(proof_stack):
    """HostCpuHigh's expression, evaluated by Mimir's query API through the gateway, reads
    above 0.8 while every core is burnt."""
    stack, _ = proof_stack
    if not stack.endpoints.has_mimir:
        pytest.skip("no mimir program is installed here, so the stack runs without Mimir")
    rule = next(q for q in SHIPPED if "rule 'HostCpuHigh'" in q.where)
    burners = [subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()+60\nwhile time.time()<t: pass"])
               for _ in range(os.cpu_count() or 2)]
    try:
        deadline = time.monotonic() + 50
        best = 0.0
        while time.monotonic() < deadline:
            for series in run_query(stack, rule):
                best = max(best, float(series["value"][1]))
                assert "instance" in series["metric"] and series["metric"].get("job") == "host", series["metric"]
            if best > 0.8:
                break
            time.sleep(2)
    finally:
        for b in burners:
            b.kill()
    assert best > 0.8, f"HostCpuHigh's expression peaked at {best:.2f} under a CPU burner"


def test_a_misspelt_label_value_is_caught(proof_stack):
    """The proof fails on a name that does not exist (LogQL): the gateway's access-log
    panel with the service name one letter off returns nothing."""
    stack, _ = proof_stack
    q = next(q for q in SHIPPED if q.lang == "logql" and 'service_name="obskit-gateway"' in q.expr
             and "Requests by route" in q.where)
    assert _has_data(_eventually(stack, q, 60))
    wrong = Shipped(q.where, q.lang, q.expr.replace("obskit-gateway", "obskit-gatewy"), q.datasource)
    assert not _has_data(run_query(stack, wrong))


def test_a_misspelt_metric_name_is_caught(proof_stack):
    """The proof fails on a name that does not exist: the same query with one letter off
    returns nothing, so a panel or rule written that way would fail the proof above."""
    stack, _ = proof_stack
    if not stack.endpoints.has_mimir:
        pytest.skip("no mimir program is installed here, so the stack runs without Mimir")
    q = next(q for q in SHIPPED if "otelcol_process_cpu_seconds" in q.expr)
    assert _has_data(_eventually(stack, q, 30))
    wrong = Shipped(q.where, q.lang, q.expr.replace("otelcol_process_cpu_seconds", "otelcol_process_cpu_seconds_total"),
                    q.datasource)
    assert not _has_data(run_query(stack, wrong))
