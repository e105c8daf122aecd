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

Where Grafana is installed, the same stack also proves Grafana itself: its log has no
provisioning error or warning, every dashboard panel query runs through Grafana's
/api/ds/query as a viewer (the way a browser runs it), `obskit verify`'s Grafana checks
pass, and HostCpuHigh goes Pending, Firing, notifies a local webhook and resolves under a
CPU burner. Its `for` is shortened through the spec (--set), as a user would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest
import requests

from obskit.checks import shipped_query_targets
from obskit.proof import load_empty_at_rest
from obskit.render import render
from obskit.spec.load import load_spec

from conftest import require_tool
from webhook_receiver import WebhookReceiver, alerts_named

pytestmark = pytest.mark.binary

APP = "proof-app"
SETS = [
    "collector.scrape_interval=2s",
    "collector.batch_timeout=200ms",
]
# HostCpuHigh (the default spec's first rule) shortened through the spec, and two webhook
# contact points on a receiver the test runs: warnings go to one that answers 500 and then
# (continue) to one that answers 200, so both "sent" and "failed" notifications happen.
ALERT_FOR_SECONDS = 20


def alert_sets(receiver: WebhookReceiver) -> list[str]:
    return [
        f"alerting.rules[0].for={ALERT_FOR_SECONDS}s",
        "alerting.rules[0].interval=10s",
        "alerting.contact_points=[{name: proof-hook, type: webhook, url: '%s'},"
        " {name: proof-fail, type: webhook, url: '%s'}]" % (receiver.url("/hook"), receiver.url("/fail")),
        "alerting.policy={receiver: proof-hook, group_wait: 1s, group_interval: 10s, repeat_interval: 1h,"
        " routes: [{severity: [warning], receiver: proof-fail, continue: true},"
        " {severity: [warning], receiver: proof-hook}]}",
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

    with WebhookReceiver() as receiver:
        try:
            stack = start_process_stack(sets=[*SETS, *alert_sets(receiver)])
        except NoBinaries as exc:
            pytest.skip(str(exc))
        stack.receiver = receiver
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
                and query_metrics(ep, "ops", 'up{job=~"otelcol(-.+)?"}'))
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
    """Exports the gateway or a backend refuses for good. Logs: lines too old for Loki
    (400). Metrics: Mimir takes too-old samples as a partial success (the collector counts
    nothing), so the collector is handed a metric export larger than the gateway accepts
    in a body (client_max_body_size): 413, which it does not retry."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    scenario_bad_push(stack)
    port = stack._runtime.processes.ports["otelcol"]["http"]
    limit = _size_bytes(stack.spec.gateway.client_max_body_size)

    def big_request() -> bytes:
        msg = ExportMetricsServiceRequest()
        rm = msg.resource_metrics.add()
        kv = rm.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", "proof-too-big"
        m = rm.scope_metrics.add().metrics.add()
        m.name = "proof_too_big"
        for i in range(9):  # random bytes: gzip cannot bring them under the limit
            p = m.gauge.data_points.add()
            p.time_unix_nano, p.as_double = time.time_ns(), float(i)
            a = p.attributes.add()
            a.key, a.value.bytes_value = "blob", os.urandom(limit // 8)
        return msg.SerializeToString()

    # One request of 9/8 of the limit: over it after gzip, under the receiver's own 20 MiB.
    bodies = [big_request()]

    def post(body: bytes) -> int:
        return requests.post(f"http://127.0.0.1:{port}/v1/metrics", data=body,
                             headers={"Content-Type": "application/x-protobuf"}, timeout=30).status_code

    codes = [post(body) for body in bodies]
    assert codes == [200], codes


def _size_bytes(size: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    size = str(size).strip().lower()
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


def scenario_collector_queue_full(stack) -> None:
    """Not run here: with the batch processor in front (200 ms), the exporter's queue of
    5000 requests fills at about 5 requests a second while the gateway stalls; filling it
    in a test needs the batch size at 1 and then drains for minutes through the writer's
    rate limit, disturbing every other proof. Left open, said so."""
    pytest.skip("scenario collector_queue_full is not run by this proof (see its docstring): "
                "the enqueue-failure counters are not proven with data here")


def scenario_object_store_errors(stack) -> None:
    """The S3 API stops for a while: Loki and Mimir count failed bucket operations."""
    import signal

    procs = stack._runtime.processes
    running = procs._read_state()["object-store"]
    group = running.group or running.pid  # the supervisor's process group holds the program
    os.killpg(group, signal.SIGSTOP)  # frozen: requests time out or are refused
    try:
        time.sleep(25)
    finally:
        os.killpg(group, signal.SIGCONT)


class CpuBurner:
    """One busy process per core, each ending by itself after `seconds` at the latest."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.procs: list[subprocess.Popen] = []

    def __enter__(self):
        code = f"import time\nt=time.time()+{self.seconds}\nwhile time.time()<t: pass"
        self.procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 2)]
        return self

    def __exit__(self, *exc):
        for b in self.procs:
            b.kill()
        for b in self.procs:
            b.wait()


def scenario_cpu_burn(stack) -> None:
    with CpuBurner(40):
        time.sleep(20)


def scenario_alert_firing(stack) -> None:
    """HostCpuHigh fires under a CPU burner; Grafana notifies both webhook contact points
    (one answers 500, so a delivery also fails)."""
    if not stack.endpoints.has_grafana:
        return
    receiver = stack.receiver
    with CpuBurner(300):
        sent = receiver.wait_for(lambda d: d.path == "/hook" and alerts_named(d, "HostCpuHigh", "firing"), 240)
        failed = receiver.wait_for(lambda d: d.path == "/fail" and alerts_named(d, "HostCpuHigh", "firing"), 30)
    assert sent and failed, "HostCpuHigh did not notify both webhook contact points under a CPU burner"
    time.sleep(15)  # the failing delivery gives up after its retries (group_interval)


SCENARIO_RUNNERS = {
    "bad_push": scenario_bad_push,
    "flood": scenario_flood,
    "collector_export_fail": scenario_collector_export_fail,
    "collector_queue_full": scenario_collector_queue_full,
    "object_store_errors": scenario_object_store_errors,
    "cpu_burn": scenario_cpu_burn,
    "alert_firing": scenario_alert_firing,
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
    with CpuBurner(60):
        deadline = time.monotonic() + 50
        best = 0.0
        while time.monotonic() < deadline:
            for series in run_query(stack, rule):
                best = max(best, float(series["value"][1]))
                assert "instance" in series["metric"] and series["metric"].get("job") == "host", series["metric"]
            if best > 0.8:
                break
            time.sleep(2)
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
    returns nothing, so a panel or rule written that way would fail the proof above. The
    query is one with a single collector metric and no `or` (in `A or B`, a misspelt B
    still returns A's data, so such a query cannot show the check working)."""
    stack, _ = proof_stack
    if not stack.endpoints.has_mimir:
        pytest.skip("no mimir program is installed here, so the stack runs without Mimir")
    q = next(q for q in SHIPPED if q.lang == "promql" and q.expr not in EMPTY_AT_REST
             and not re.search(r"\bor\b", q.expr) and len(set(re.findall(r"\botelcol_\w+", q.expr))) == 1)
    (name,) = set(re.findall(r"\botelcol_\w+", q.expr))
    assert _has_data(_eventually(stack, q, 30))
    wrong = Shipped(q.where, q.lang, q.expr.replace(name, name[:-1]), q.datasource)
    assert not _has_data(run_query(stack, wrong)), wrong.expr


# --------------------------------------------------------------------------- Grafana

# Grafana's log lines (JSON, one a line) that count as a provisioning problem.
PROVISIONING_LOGGERS = ("provisioning", "ngalert.provisioning", "datasources", "plugins.registration", "plugin.loader")
BAD_LEVELS = {"warn", "warning", "eror", "error", "crit", "critical", "fatal"}


def needs_grafana_program(stack) -> None:
    if not stack.endpoints.has_grafana:
        pytest.skip("no grafana program is installed here, so the stack runs without Grafana")


def grafana_log_problems(lines: list[str]) -> list[str]:
    """Error and warning lines from Grafana's provisioning (datasources, dashboards, alert
    rules, contact points, policies, templates) and from loading the plugins they use."""
    import json

    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        level = str(entry.get("level", "")).lower()
        logger = str(entry.get("logger", ""))
        text = " ".join(str(v) for v in entry.values()).lower()
        if level in BAD_LEVELS and (logger.startswith(PROVISIONING_LOGGERS) or "provision" in text):
            found.append(line.strip())
    return found


def test_grafana_log_has_no_provisioning_error_or_warning(proof_stack):
    stack, _ = proof_stack
    needs_grafana_program(stack)
    log = stack._runtime.processes.log_path("grafana").read_text(errors="replace").splitlines()
    assert any('"logger":"provisioning' in line or "provisioning" in line for line in log), \
        "Grafana's log says nothing of provisioning: is this its log?"
    assert grafana_log_problems(log) == []


def test_the_grafana_log_check_catches_a_provisioning_warning():
    line = ('{"level":"warn","logger":"provisioning.datasources","msg":"Not all datasources were provisioned",'
            '"t":"2026-12-07T20:00:00Z"}')
    other = '{"level":"warn","logger":"cleanup","msg":"unrelated","t":"2026-12-07T20:00:00Z"}'
    assert grafana_log_problems([line, other]) == [line]


def _grafana(stack, user: tuple[str, str] | None = None) -> requests.Session:
    s = stack.endpoints.session()
    s.auth = user or stack.endpoints.grafana_admin
    return s


@pytest.fixture(scope="module")
def viewer(proof_stack):
    """A user with the Viewer role only, created through Grafana's admin API."""
    import secrets

    stack, _ = proof_stack
    needs_grafana_program(stack)
    login, password = "proof-viewer", secrets.token_urlsafe(18)
    r = _grafana(stack).post(f"{stack.endpoints.grafana}/api/admin/users",
                             json={"name": login, "login": login, "password": password,
                                   "email": "viewer@proof.invalid"}, timeout=15)
    assert r.status_code == 200, r.text
    r = _grafana(stack, (login, password)).get(f"{stack.endpoints.grafana}/api/user", timeout=15)
    assert r.status_code == 200, r.text
    orgs = _grafana(stack, (login, password)).get(f"{stack.endpoints.grafana}/api/user/orgs", timeout=15).json()
    assert [o["role"] for o in orgs] == ["Viewer"], orgs
    return login, password


PANELS = [q for q in SHIPPED if q.where.startswith("configs/grafana/dashboards/") and " panel " in q.where]
# A dashboard's datasource variable, as a browser fills it in on first load (the default).
DATASOURCE_VARS = {"${metrics}": "obskit-apps-metrics", "${logs}": "obskit-apps-logs"}


def ds_query(stack, user, q: Shipped, minutes: int = 10) -> requests.Response:
    """The request Grafana's frontend makes for one panel target: /api/ds/query with the
    panel's datasource uid. Dashboard variables are filled in as the browser does;
    Grafana's own ($__rate_interval, $__interval, $__auto, $__range) are left to Grafana."""
    uid = DATASOURCE_VARS.get(q.datasource, q.datasource)
    expr = q.expr.replace("$${", "${")
    for name in ("service_name", "__value.raw"):
        expr = expr.replace("${" + name + "}", APP).replace("$" + name, APP)
    now = int(time.time() * 1000)
    query = {"refId": "A", "datasource": {"uid": uid}, "expr": expr, "intervalMs": 15000, "maxDataPoints": 300}
    if q.lang == "promql":
        query |= {"range": True, "instant": False}
    else:
        query |= {"queryType": "range", "maxLines": 100}
    return _grafana(stack, user).post(f"{stack.endpoints.grafana}/api/ds/query",
                                      json={"queries": [query], "from": str(now - minutes * 60_000), "to": str(now)},
                                      timeout=60)


def frames_have_data(body: dict) -> bool:
    for result in (body.get("results") or {}).values():
        for frame in result.get("frames") or []:
            values = (frame.get("data") or {}).get("values") or []
            if values and any(len(column) for column in values):
                return True
    return False


@pytest.mark.parametrize("q", PANELS, ids=[q.id for q in PANELS])
def test_panel_query_through_grafana_as_a_viewer(proof_stack, viewer, q: Shipped):
    """Each panel target through Grafana, as its viewer: the datasource's uid, auth, headers
    and TLS to the gateway all take part. It returns data, or it is one of the expressions
    empty at rest (obskit/proof/empty_at_rest.yaml), which the proof above has already made
    return data by running its scenario (and then it must return data here too)."""
    stack, _ = proof_stack
    entry = EMPTY_AT_REST.get(q.expr)
    deadline = time.monotonic() + (60 if entry is None else 30)
    while True:
        r = ds_query(stack, viewer, q)
        assert r.status_code == 200, f"{q.where}: /api/ds/query answered {r.status_code}: {r.text[:500]}"
        body = r.json()
        errors = [res.get("error") for res in body.get("results", {}).values() if res.get("error")]
        assert not errors, f"{q.where}: {errors}"
        if frames_have_data(body) or time.monotonic() > deadline:
            break
        time.sleep(3)
    if entry is not None and entry["scenario"] not in _ran:
        pytest.skip(f"empty at rest ({entry['reason']}); its scenario {entry['scenario']} has not run in this session")
    assert frames_have_data(body), f"{q.where}: no data through Grafana for `{q.expr}`"


def test_a_panel_query_with_a_wrong_datasource_uid_fails_through_grafana(proof_stack, viewer):
    stack, _ = proof_stack
    q = next(q for q in PANELS if q.lang == "promql" and q.expr not in EMPTY_AT_REST)
    wrong = Shipped(q.where, q.lang, q.expr, q.datasource.replace("-metrics", "-metrix"))
    r = ds_query(stack, viewer, wrong)
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    assert r.status_code != 200 or not frames_have_data(body)


def test_obskit_verify_grafana_checks_run_for_real(proof_stack):
    stack, _ = proof_stack
    needs_grafana_program(stack)
    outcomes = stack.verify(["grafana_health", "grafana_datasources", "grafana_dashboards", "grafana_alerting"])
    assert outcomes and all(o.ok for o in outcomes), [(o.name, o.ok, o.detail) for o in outcomes]


def _rule_state(stack, name: str) -> str | None:
    r = _grafana(stack).get(f"{stack.endpoints.grafana}/api/prometheus/grafana/api/v1/rules", timeout=15)
    r.raise_for_status()
    for group in r.json()["data"]["groups"]:
        for rule in group["rules"]:
            if rule["name"] == name:
                return rule["state"]
    return None


def test_host_cpu_alert_goes_pending_firing_notifies_and_resolves(proof_stack):
    """Under a CPU burner HostCpuHigh (for: shortened to 20 s through --set) goes Pending,
    then Firing in Grafana; the webhook receives the notification with the rule's name,
    labels, summary and runbook link; after the burner stops, a resolved notification."""
    stack, _ = proof_stack
    needs_grafana_program(stack)
    receiver = stack.receiver
    # Start from Normal (an earlier scenario may have left it firing).
    deadline = time.monotonic() + 180
    while _rule_state(stack, "HostCpuHigh") != "inactive":
        assert time.monotonic() < deadline, f"HostCpuHigh stays {_rule_state(stack, 'HostCpuHigh')} at rest"
        time.sleep(2)
    seen = len(receiver.deliveries)
    states: dict[str, float] = {}
    t0 = time.monotonic()
    with CpuBurner(300):
        while "firing" not in states and time.monotonic() - t0 < 240:
            state = _rule_state(stack, "HostCpuHigh")
            states.setdefault(state, time.monotonic() - t0)
            time.sleep(1)
        firing = receiver.wait_for(lambda d: receiver.deliveries.index(d) >= seen and d.path == "/hook"
                                   and alerts_named(d, "HostCpuHigh", "firing"), 120)
        stopped = time.monotonic()
    assert "pending" in states and "firing" in states, f"states seen: {states}"
    assert states["pending"] < states["firing"]
    assert firing is not None, "no firing notification reached the webhook"
    (alert,) = alerts_named(firing, "HostCpuHigh", "firing")
    assert alert["labels"]["severity"] == "warning" and alert["labels"]["team"] == "platform"
    assert alert["labels"]["grafana_folder"] == "obskit-platform"
    assert alert["annotations"]["summary"] == "CPU use above 80% for 5 minutes"
    assert alert["annotations"]["runbook_url"].endswith("/d/obskit-runbooks/runbooks?viewPanel=panel-1")
    assert "Runbook: http" in firing.body["message"] and "/d/obskit-runbooks/runbooks?viewPanel=panel-1" in firing.body["message"]
    assert "HostCpuHigh" in firing.body["title"] and firing.body["status"] == "firing"
    resolved = receiver.wait_for(lambda d: d.at > stopped and d.path == "/hook"
                                 and alerts_named(d, "HostCpuHigh", "resolved"), 240)
    assert resolved is not None, "no resolved notification after the burner stopped"
    print(f"\nHostCpuHigh (for {ALERT_FOR_SECONDS}s, interval 10s): pending after {states['pending']:.1f} s, "
          f"firing after {states['firing']:.1f} s, notification after {firing.at - t0:.1f} s from burner start; "
          f"resolved notification {resolved.at - stopped:.1f} s after the burner stopped")


def _history(stack, tenant: str, rule: str) -> list[dict]:
    from obskit.verify import query_logs

    streams = query_logs(stack.endpoints, tenant, f'{{from="state-history"}} | json | ruleTitle="{rule}"',
                         since_seconds=3600)
    return [json.loads(line) for st in streams for _, line in st["values"]]


def test_alert_state_history_lands_in_loki_in_the_operators_tenant(proof_stack):
    """Grafana writes every state change of a rule to Loki through the gateway as its own
    user (operators' tenant, Loki push and query only). After HostCpuHigh fired (the test
    above), its Pending and Alerting transitions are there for the operators' reader, in no
    other tenant, and Grafana's own history API (served from Loki) returns them."""
    stack, _ = proof_stack
    needs_grafana_program(stack)
    ops = stack.spec.operators.tenant
    entries: list[dict] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        entries = _history(stack, ops, "HostCpuHigh")
        if any(e.get("current", "").startswith("Alerting") for e in entries):
            break
        time.sleep(2)
    currents = {e.get("current", "").split(" ")[0] for e in entries}
    assert {"Pending", "Alerting"} <= currents, f"state history of HostCpuHigh in Loki: {currents or 'nothing'}"
    assert all(e["ruleTitle"] == "HostCpuHigh" and e.get("previous") for e in entries)
    for tenant in stack.endpoints.tenants:
        if tenant != ops:
            assert _history(stack, tenant, "HostCpuHigh") == [], f"state history leaked into tenant {tenant}"
    # Grafana's history API reads it back from Loki (its primary history backend).
    s = stack.endpoints.session()
    s.auth = stack.endpoints.grafana_admin
    now = int(time.time())
    r = s.get(f"{stack.endpoints.grafana}/api/v1/rules/history",
              params={"from": now - 3600, "to": now, "limit": 100, "ruleUID": entries[0]["ruleUID"]}, timeout=15)
    assert r.status_code == 200, r.text[:300]
    frames = r.json().get("data", {}).get("values") or []
    assert frames and any(frames), f"Grafana's history API returned nothing: {r.text[:300]}"


def test_grafana_reaches_loki_for_history_without_an_error(proof_stack):
    """Grafana tests its history backend at start and logs an error when it cannot reach it
    (a TLS trust, credential or route mistake); a failed write is logged too."""
    stack, _ = proof_stack
    needs_grafana_program(stack)
    log = stack._runtime.processes.log_path("grafana").read_text(errors="replace")
    bad = [line for line in log.splitlines()
           if "ngalert.state.historian" in line and ('"level":"error"' in line or "level=error" in line)]
    assert not bad, "\n".join(bad[:5])


def test_an_obskit_annotation_shows_on_every_dashboard_with_a_time_axis(proof_stack, viewer):
    """What `obskit up`, `promote --apply`, `secrets rotate` and `load` write (obskit.annotate)
    is found by each dashboard's own annotation queries, asked as a viewer the way the
    dashboard asks them; the runbooks dashboard (text only) has none."""
    from obskit.annotate import Event, write

    stack, _ = proof_stack
    needs_grafana_program(stack)
    out = write(stack.endpoints, Event("load", "process", "obskit load steady: counts balance", {"scenario": "steady"}))
    assert out.written, out.detail
    ident = int(out.detail.split()[-1])
    as_viewer = _grafana(stack, viewer)
    shown = {}
    for uid in stack.endpoints.dashboard_uids:
        dash = as_viewer.get(f"{stack.endpoints.grafana}/api/dashboards/uid/{uid}", timeout=15).json()["dashboard"]
        found = set()
        for query in dash.get("annotations", {}).get("list", []):
            target = query.get("target") or {}
            if not query.get("enable") or target.get("type") != "tags":
                continue
            r = as_viewer.get(f"{stack.endpoints.grafana}/api/annotations", timeout=15, params={
                "tags": target["tags"], "matchAny": str(target.get("matchAny", False)).lower(),
                "limit": target.get("limit", 100), "type": "annotation"})
            assert r.status_code == 200, r.text[:200]
            found |= {a["id"] for a in r.json()}
        shown[uid] = ident in found
    assert shown.pop("obskit-runbooks") is False
    assert shown and all(shown.values()), f"dashboards that do not show obskit's annotation: {shown}"
