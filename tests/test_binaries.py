"""Binary contract tests: the rendered configs, run by the real component binaries.

Each test validates the config with the binary's own check, starts the server on
127.0.0.1 with the loopback bindings (S3 on a moto server), waits for /ready, pushes
data and reads it back. With nginx installed, the push and the query also go through
the real gateway with TLS and per-tenant basic auth. Each test skips, with the reason,
when its binary is not on PATH.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from obskit import loopback
from obskit.render import render, write_environment
from obskit.spec.load import load_spec
from obskit.tools import nginx
from obskit.tools.run import run, which

from conftest import require_tool
from support import Proc, http_ok, wait_until

pytestmark = pytest.mark.binary


@pytest.fixture
def stack(tmp_path, moto_s3):
    """The default spec rendered, and a loopback plan pointing at moto."""
    resolved = load_spec(None, environ={}, use_default_file=False)
    rendered = tmp_path / "env"
    write_environment(render(resolved, "local"), rendered)
    plan = loopback.plan(
        resolved.spec,
        rendered,
        tmp_path / "work",
        s3_endpoint=moto_s3["endpoint"],
        s3_access_key=moto_s3["access_key"],
        s3_secret_key=moto_s3["secret_key"],
    )
    procs: list[Proc] = []
    yield plan, procs, tmp_path
    for p in reversed(procs):
        p.stop()


def start_gateway(plan, procs, tmp_path) -> tuple[str, str] | None:
    """The real nginx gateway in front of the loopback servers, or None without nginx."""
    if which("nginx") is None:
        return None
    prepared = nginx.prepare(plan.rendered / "configs" / "gateway", plan.env["gateway"])
    nginx.test_config(prepared.conf)
    gw = Proc("nginx", ["nginx", "-c", str(prepared.conf), "-e", "stderr", "-g", "daemon off;"], {}, tmp_path)
    procs.append(gw.start())
    ca = tmp_path / "ca.pem"
    ca.write_text(plan.secrets["gateway-ca-cert"])
    base = f"https://localhost:{plan.ports['gateway']['https']}"
    wait_until("gateway", lambda: http_ok(f"{base}/nginx-health", verify=str(ca)), 15, [gw])
    return base, str(ca)


def start_loki(plan, procs, tmp_path) -> Proc:
    config = plan.config("loki", "loki.yaml")
    loki = Proc("loki", ["loki", f"-config.file={config}", "-config.expand-env=true", "-target=all"],
                plan.env["loki"], tmp_path)
    procs.append(loki.start())
    wait_until("loki /ready", lambda: http_ok(f"{plan.url('loki')}/ready"), 90, procs)
    return loki


def start_mimir(plan, procs, tmp_path) -> None:
    """Every replica as its own process; they find each other over memberlist."""
    config = plan.config("mimir", "mimir.yaml")
    for replica in plan.spec.mimir_replicas:
        procs.append(Proc(replica, ["mimir", f"-config.file={config}", "-config.expand-env=true", "-target=all"],
                          plan.env[replica], tmp_path).start())
    for replica in plan.spec.mimir_replicas:
        wait_until(f"{replica} /ready", lambda r=replica: http_ok(f"{plan.url(r)}/ready"), 90, procs)


def whole_stack(stack):
    """Loki, the Mimir replicas and the gateway in front, all real; (plan, verify endpoints)."""
    require_tool("loki", "build or install Loki 3.7 to run this test")
    require_tool("mimir", "build or install Mimir 3.x to run this test")
    require_tool("nginx", "apt-get install nginx")
    plan, procs, tmp_path = stack
    start_loki(plan, procs, tmp_path)
    start_mimir(plan, procs, tmp_path)
    _gw, ca = start_gateway(plan, procs, tmp_path)
    return plan, loopback.endpoints(plan, ca)


def pinned_session() -> requests.Session:
    """A session that verifies against the CA it is given, whatever REQUESTS_CA_BUNDLE says
    (requests lets that variable override a session's verify setting)."""
    session = requests.Session()
    session.trust_env = False
    return session


def creds(plan, tenant: str, role: str) -> tuple[str, str]:
    return f"{tenant}-{role}", plan.secrets[f"tenant-{tenant}-{role}-password"]


# --------------------------------------------------------------------------- Loki


def test_loki_contract(stack):
    require_tool("loki", "build or install Loki 3.7 to run this contract test")
    plan, procs, tmp_path = stack
    config = plan.config("loki", "loki.yaml")
    env = plan.env["loki"]
    run(["loki", f"-config.file={config}", "-config.expand-env=true", "-verify-config"], env=env)

    loki = start_loki(plan, procs, tmp_path)
    base = plan.url("loki")

    # Multi-tenancy is on: no org id, no answer.
    assert requests.get(f"{base}/loki/api/v1/labels", timeout=5).status_code == 401

    marker = f"obskit-contract-{uuid.uuid4()}"
    now_ns = str(time.time_ns())
    push = {"streams": [{"stream": {"job": "contract", "service_name": "contract"}, "values": [[now_ns, marker]]}]}
    r = requests.post(f"{base}/loki/api/v1/push", json=push, headers={"X-Scope-OrgID": "apps"}, timeout=10)
    assert r.status_code == 204, r.text

    def found(tenant: str, base_url: str = base, **kw) -> bool:
        r = requests.get(
            f"{base_url}/loki/api/v1/query_range",
            params={"query": '{service_name="contract"} |= "%s"' % marker, "start": int(time.time() - 300) * 10**9},
            timeout=10,
            **kw,
        )
        r.raise_for_status()
        return any(marker in v[1] for s in r.json()["data"]["result"] for v in s["values"])

    wait_until("the log line in Loki", lambda: found("apps", headers={"X-Scope-OrgID": "apps"}), 30, [loki])
    assert not found("sandbox", headers={"X-Scope-OrgID": "sandbox"})  # isolation

    gateway = start_gateway(plan, procs, tmp_path)
    if gateway is None:
        return
    gw, ca = gateway
    # Native OTLP through the gateway: TLS verified against the generated CA, apps' writer.
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    import base64
    import logging

    user, password = creds(plan, "apps", "write")
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    exporter = OTLPLogExporter(
        endpoint=f"{gw}/otlp/v1/logs", headers={"Authorization": auth}, certificate_file=ca, session=pinned_session()
    )
    provider = LoggerProvider(resource=Resource.create({"service.name": "contract-otlp", "service.instance.id": "t1"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("obskit.contract")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=provider))
    otlp_marker = f"otlp-{uuid.uuid4()}"
    logger.warning(otlp_marker)
    provider.shutdown()

    reader = pinned_session()
    reader.auth = creds(plan, "apps", "read")
    reader.verify = ca

    def found_otlp() -> bool:
        r = reader.get(
            f"{gw}/loki/api/v1/query_range",
            params={"query": '{service_name="contract-otlp"} |= "%s"' % otlp_marker, "start": int(time.time() - 300) * 10**9},
            timeout=10,
        )
        r.raise_for_status()
        return bool(r.json()["data"]["result"])

    wait_until("the OTLP log line through the gateway", found_otlp, 30, procs)
    # The sandbox tenant's reader sees nothing of it, even when it asks for apps' org id.
    other = requests.get(
        f"{gw}/loki/api/v1/query_range",
        params={"query": '{service_name="contract-otlp"}', "start": int(time.time() - 300) * 10**9},
        auth=creds(plan, "sandbox", "read"),
        headers={"X-Scope-OrgID": "apps"},
        verify=ca,
        timeout=10,
    )
    assert other.status_code == 200 and other.json()["data"]["result"] == []
    # service.instance.id is not an index label (a new stream per process run otherwise).
    labels = reader.get(f"{gw}/loki/api/v1/labels", timeout=10).json()["data"]
    assert "service_name" in labels and "service_instance_id" not in labels


# --------------------------------------------------------------------------- Mimir


def test_mimir_contract(stack):
    require_tool("mimir", "build or install Mimir 3.x to run this contract test")
    plan, procs, tmp_path = stack
    config = plan.config("mimir", "mimir.yaml")
    replicas = plan.spec.mimir_replicas
    run(["mimir", f"-config.file={config}", "-config.expand-env=true", "-print.config"], env=plan.env[replicas[0]])

    start_mimir(plan, procs, tmp_path)

    first, last = plan.url(replicas[0]), plan.url(replicas[-1])
    assert requests.get(f"{first}/prometheus/api/v1/labels", timeout=5).status_code == 401  # no org id

    # OTLP metrics, as an SDK sends them, straight into the first replica.
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    def push(endpoint: str, headers: dict, **kw) -> None:
        exporter = OTLPMetricExporter(endpoint=endpoint, headers=headers, session=pinned_session(), **kw)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        provider = MeterProvider(
            resource=Resource.create({"service.name": "contract", "service.namespace": "obskit"}),
            metric_readers=[reader],
        )
        provider.get_meter("contract").create_counter("contract.requests").add(7, {"route": "/x"})
        reader.force_flush()
        provider.shutdown()

    push(f"{first}/otlp/v1/metrics", {"X-Scope-OrgID": "apps"})

    def value(base: str, tenant: str, **kw) -> list:
        r = requests.get(f"{base}/prometheus/api/v1/query", params={"query": "contract_requests"}, timeout=10, **kw)
        r.raise_for_status()
        return r.json()["data"]["result"]

    # Mimir 3 keeps OTLP names without suffixes: contract.requests -> contract_requests.
    wait_until("the sample in Mimir (read from another replica)",
               lambda: bool(value(last, "apps", headers={"X-Scope-OrgID": "apps"})), 30, procs)
    series = value(last, "apps", headers={"X-Scope-OrgID": "apps"})[0]
    assert series["metric"]["job"] == "obskit/contract" and series["value"][1] == "7"
    assert value(last, "sandbox", headers={"X-Scope-OrgID": "sandbox"}) == []

    gateway = start_gateway(plan, procs, tmp_path)
    if gateway is None:
        return
    gw, ca = gateway
    import base64

    user, password = creds(plan, "sandbox", "write")
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    push(f"{gw}/otlp/v1/metrics", {"Authorization": auth}, certificate_file=ca)
    wait_until(
        "the sample through the gateway",
        lambda: bool(value(gw, "sandbox", auth=creds(plan, "sandbox", "read"), verify=ca)),
        30,
        procs,
    )
    # apps' reader still sees only its own series.
    assert len(value(gw, "apps", auth=creds(plan, "apps", "read"), verify=ca)) == 1


# --------------------------------------------------------------------------- collector


# The collector's contract (validate, run, and the metric names the dashboards read) is
# tests/test_process_runtime.py::test_collector_config_validates_runs_and_exports_the_names_dashboards_query,
# run with obskit's own distribution (otelcol-obskit) or otelcol-contrib.


# --------------------------------------------------------------------------- verify


def test_verify_runner_against_real_loki_mimir_and_gateway(stack):
    """`obskit verify`'s runner, unchanged, against real servers behind the real gateway."""
    plan, ep = whole_stack(stack)

    from obskit.verify import cases_for, run_verify

    kinds = ["logs", "metrics", "isolation_logs", "isolation_metrics"]  # Grafana has no binary here
    outcomes = run_verify(ep, cases_for(plan.spec, kinds), deadline_seconds=30)
    assert [o.kind for o in outcomes] == kinds
    assert all(o.ok for o in outcomes), [(o.name, o.detail) for o in outcomes]


def test_every_shipped_logql_query_parses_in_real_loki(stack):
    """Dashboards, rules and correlations: each LogQL query as Loki itself parses it."""
    from obskit.checks import shipped_logql
    from obskit.logql import for_check

    require_tool("loki", "build or install Loki 3.7 to run this test")
    plan, procs, tmp_path = stack
    start_loki(plan, procs, tmp_path)
    files = {p.relative_to(plan.rendered).as_posix(): p.read_bytes()
             for p in plan.rendered.rglob("*") if p.is_file()}
    queries = shipped_logql(files)
    assert queries
    session = pinned_session()
    for where, expr in queries:
        r = session.get(f"{plan.url('loki')}/loki/api/v1/format_query", params={"query": for_check(expr)},
                        headers={"X-Scope-OrgID": "apps"}, timeout=10)
        assert r.status_code == 200, f"{where}: {r.status_code} {r.text}"
    # And Loki refuses what obskit's own checker refuses.
    r = session.get(f"{plan.url('loki')}/loki/api/v1/format_query", params={"query": 'count_over_time({a="b"})'},
                    headers={"X-Scope-OrgID": "apps"}, timeout=10)
    assert r.status_code == 400


def test_load_generator_counts_match_what_real_loki_and_mimir_store(stack):
    """A short load run through the real gateway into real Loki and Mimir; afterwards the
    backend counts (LogQL, PromQL) equal what the generator counted as accepted."""
    from obskit.loadgen.api import backend_counts, target_for
    from obskit.loadgen.report import build
    from obskit.loadgen.run import run as run_load
    from obskit.loadgen.scenario import Scenario

    plan, ep = whole_stack(stack)
    gw = ep.gateway
    scenario = Scenario.model_validate({
        "name": "binary-load", "duration": "5s", "workers": 1, "services": 4, "series_per_service": 25,
        "batch_logs": 200, "batch_points": 200, "freshness_every": "2s",
        "tenants": [{"tenant": "apps", "logs": [{"at": 0, "rate": 400}], "points": [{"at": 0, "rate": 400}]}],
    })
    tenants = {None: "apps", "apps": "apps"}
    live = run_load(scenario, target_for(ep, ["apps"]), tenants=tenants, probes=ep)
    backend = backend_counts(ep, live, tenants, settle_s=60)
    counted = backend["tenants"]["apps"]
    assert counted["logs_accepted"] > 1000 and counted["points_accepted"] > 1000
    assert counted["logs_loss"] == 0, counted
    assert counted["points_loss"] == 0, counted
    report = build(live, scenario, gw, backend)
    assert report["freshness"]["apps"]["logs"]["samples"] and report["freshness"]["apps"]["logs"]["failed"] == 0
