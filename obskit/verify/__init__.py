"""Declarative acceptance checks: push through the gateway, query back, per tenant.

The checks are data (``cases.yaml`` here, plus ``verify.cases`` in the spec); one runner
serves ``obskit verify``, ``obskit up``, the pytest plugin and the end-to-end tests. It
needs only :class:`Endpoints`: where the gateway is, how to trust it, and credentials.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Callable, Iterable, Sequence

import yaml

from obskit.errors import ObskitError
from obskit.spec.model import Spec, VerifyCase

VERIFY_SERVICE = "obskit-verify"


@dataclass
class Endpoints:
    """How to reach and authenticate to a running stack."""

    gateway: str  # e.g. https://localhost:8443
    grafana: str  # e.g. https://localhost:8443/grafana
    ca_file: str | None  # CA bundle that signs the gateway's certificate; None: system trust
    passwords: dict[str, str]  # gateway user -> password (<tenant>-write, <tenant>-read, ...)
    grafana_admin: tuple[str, str]
    tenants: list[str]
    datasource_uids: list[str]
    dashboard_uids: list[str]
    metric_suffixes: bool = False
    rule_uids: list[str] = field(default_factory=list)  # provisioned alert rules
    contact_points: list[str] = field(default_factory=list)  # provisioned contact point names
    has_grafana: bool = True  # False where the environment runs without Grafana (process runtime's skip)
    has_mimir: bool = True  # False where it runs without Mimir (a logs-only process stack)

    def auth(self, tenant: str, role: str) -> tuple[str, str]:
        user = f"{tenant}-{role}"
        return user, self.passwords[user]

    def auth_header(self, tenant: str, role: str) -> str:
        user, password = self.auth(tenant, role)
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def session(self, tenant: str | None = None, role: str = "read"):
        """A requests session that trusts exactly ``ca_file`` (REQUESTS_CA_BUNDLE cannot
        override it) and authenticates as a tenant's reader or writer."""
        import requests

        s = requests.Session()
        s.trust_env = False
        s.verify = self.ca_file if self.ca_file else True
        if tenant:
            s.auth = self.auth(tenant, role)
        return s


@dataclass
class Outcome:
    name: str
    kind: str
    ok: bool
    seconds: float
    detail: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _State:
    """What earlier checks left for later ones (the markers they pushed)."""

    log_marker: str | None = None
    log_tenant: str | None = None
    metric_marker: str | None = None
    metric_tenant: str | None = None
    extra: dict = field(default_factory=dict)


class CheckFailed(Exception):
    pass


class GatewayUnreachable(ObskitError):
    """Nothing answers at the gateway's address: no check can pass, so none is run."""

    exit_code = 1


def ensure_gateway_answers(ep: Endpoints, timeout: float = 5.0, env_name: str | None = None) -> None:
    """Open one TLS connection to the gateway; fail at once, in one sentence, when it is
    refused (the stack is not running there) or when something else answers there (its
    certificate is not signed by this environment's CA: another stack holds the port),
    instead of letting every check wait out its deadline."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    env = f" --env {env_name}" if env_name else ""
    url = urlsplit(ep.gateway)
    host, port = url.hostname or "localhost", url.port or (443 if url.scheme == "https" else 80)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise GatewayUnreachable(
            f"nothing answers at {ep.gateway} (connection refused): the stack is not running there",
            hint=f"start it with `obskit up{env}`" if env_name else
                 "start it with `obskit up` (or pick the environment with --env)",
        ) from None
    except socket.timeout:
        raise GatewayUnreachable(f"the gateway at {ep.gateway} did not accept a connection within {timeout:g} s",
                                 hint="check that the stack is up and that nothing blocks the port") from None
    except OSError as exc:
        raise GatewayUnreachable(f"cannot connect to the gateway at {ep.gateway}: {exc.strerror or exc}",
                                 hint="check the host name and that the stack is up") from None
    with sock:
        if url.scheme != "https" or not ep.ca_file:
            return
        context = ssl.create_default_context(cafile=ep.ca_file)
        try:
            context.wrap_socket(sock, server_hostname=host).close()
        except ssl.SSLCertVerificationError:
            raise GatewayUnreachable(
                f"another stack answers at {ep.gateway}: its certificate is not signed by this environment's CA "
                f"({ep.ca_file}), so it is not this project's{' ' + repr(env_name) if env_name else ''} stack",
                hint=f"`obskit status{env}` shows whether this stack runs; if it was started on other ports with "
                     f"--set ...base_port, put that base_port in obskit.yaml so that every command uses it",
            ) from None
        except (ssl.SSLError, OSError):
            return  # the checks report a TLS problem in full


def short_error(exc: BaseException) -> str:
    """One line for a connection error (requests and urllib3 nest the real cause deep)."""
    seen = exc
    for _ in range(6):
        reason = getattr(seen, "reason", None) or (seen.args[0] if getattr(seen, "args", None) else None)
        if isinstance(reason, BaseException):
            seen = reason
            continue
        break
    text = str(seen)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1][:160] if isinstance(seen, OSError) and not isinstance(seen, CheckFailed) else text[:160]


# --------------------------------------------------------------------------- cases


def builtin_cases() -> list[VerifyCase]:
    text = resources.files("obskit.verify").joinpath("cases.yaml").read_text()
    return [VerifyCase.model_validate(c) for c in yaml.safe_load(text)["cases"]]


METRIC_KINDS = frozenset({"metrics", "isolation_metrics", "promql"})


def cases_for(spec: Spec, kinds: Iterable[str] | None = None, *, skip_grafana: bool = False,
              skip_metrics: bool = False) -> list[VerifyCase]:
    """Built-in cases then the spec's, optionally only some kinds; without Grafana's checks
    where the stack runs without Grafana, and without metric checks where it runs without
    Mimir."""
    cases = builtin_cases() + list(spec.verify.cases)
    if skip_grafana:
        cases = [c for c in cases if not c.kind.startswith("grafana")]
    if skip_metrics:
        cases = [c for c in cases if c.kind not in METRIC_KINDS]
    if kinds is not None:
        wanted = set(kinds)
        cases = [c for c in cases if c.kind in wanted]
    return cases


# --------------------------------------------------------------------------- pushes


def preflight(ep: Endpoints) -> None:
    """Reach the gateway once before pushing, so a TLS or network problem is reported
    as itself (the SDK would only retry and log)."""
    import requests

    try:
        r = ep.session().get(f"{ep.gateway}/nginx-health", timeout=10)
    except requests.exceptions.SSLError as exc:
        raise CheckFailed(f"TLS to {ep.gateway} failed against CA {ep.ca_file or '(system)'}: {exc}") from None
    except requests.exceptions.ConnectionError as exc:
        raise CheckFailed(f"cannot reach the gateway at {ep.gateway}: {short_error(exc)}") from None
    if r.status_code != 200:
        raise CheckFailed(f"{ep.gateway}/nginx-health answered {r.status_code}")


class _Answers:
    """The HTTP answers an OTLP exporter got (the SDK reports only SUCCESS or FAILURE),
    with the SDK's own retry and error log lines kept off stderr: the check reports them."""

    BACKEND = {"logs": "Loki", "metrics": "Mimir"}

    def __init__(self, session) -> None:
        self.seen: list[tuple[int, str]] = []
        session.hooks["response"].append(self._record)

    def _record(self, response, *args, **kwargs):
        import re

        text = response.text
        if text.lstrip().startswith("<"):  # nginx's own HTML error page: its title says it all
            title = re.search(r"<title>([^<]*)</title>", text)
            text = title.group(1) if title else ""
        self.seen.append((response.status_code, _first_line(text)))
        return response

    def __enter__(self) -> "_Answers":
        import logging

        self.logger = logging.getLogger("opentelemetry")
        self.level, self.propagate = self.logger.level, self.logger.propagate
        self.logger.setLevel(logging.CRITICAL + 1)
        self.logger.propagate = False
        return self

    def __exit__(self, *exc) -> None:
        self.logger.setLevel(self.level)
        self.logger.propagate = self.propagate

    def failure(self, ep: Endpoints, tenant: str, signal: str) -> str:
        """One sentence: what the gateway answered, and where to look."""
        who = f"the gateway did not accept the OTLP {signal} of {tenant}-write"
        if not self.seen:
            return f"{who}: no answer from {ep.gateway} (is the stack up?)"
        status, body = self.seen[-1]
        tries = f" (after {len(self.seen)} attempts)" if len(self.seen) > 1 else ""
        text = f"{who}: HTTP {status}{tries}" + (f": {body}" if body else "")
        if status in (502, 503, 504):
            return text + f"; is {self.BACKEND[signal]} up? (`obskit status` shows each service)"
        if status in (401, 403):
            return text + "; the credential is refused: are the secrets those of the running stack?"
        return text


def exporter_kwargs(ep: Endpoints, tenant: str, signal: str) -> dict:
    """Arguments of an OTLP/HTTP exporter writing ``signal`` into ``tenant``'s data through
    the gateway (logs to Loki, metrics to Mimir), TLS verified against ``ep.ca_file``."""
    return {
        "endpoint": f"{ep.gateway}/otlp/v1/{signal}",
        "headers": {"Authorization": ep.auth_header(tenant, "write")},
        "certificate_file": ep.ca_file or None,
        "session": ep.session(),
    }


def push_log(ep: Endpoints, tenant: str, marker: str) -> None:
    """One OTLP log record through the gateway with the OpenTelemetry SDK."""
    preflight(ep)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    results: list = []

    class Recording(OTLPLogExporter):
        def export(self, batch):
            result = super().export(batch)
            results.append(result)
            return result

    kwargs = exporter_kwargs(ep, tenant, "logs")
    answers = _Answers(kwargs["session"])
    exporter = Recording(**kwargs, timeout=10)
    provider = LoggerProvider(
        resource=Resource.create({"service.name": VERIFY_SERVICE, "service.instance.id": VERIFY_SERVICE})
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("obskit.verify")
    from opentelemetry._logs import LogRecord, SeverityNumber

    with answers:
        logger.emit(LogRecord(body=f"obskit verify marker {marker}", severity_number=SeverityNumber.INFO,
                              severity_text="INFO", attributes={"obskit.marker": marker}))
        provider.shutdown()
    if [getattr(r, "name", r) for r in results] != ["SUCCESS"]:
        raise CheckFailed(answers.failure(ep, tenant, "logs"))


def metric_name(ep: Endpoints) -> str:
    # Mimir 3 adds no suffixes to OTLP names by default; with suffixes a counter ends _total.
    return "obskit_verify_marker_total" if ep.metric_suffixes else "obskit_verify_marker"


def push_metric(ep: Endpoints, tenant: str, marker: str) -> None:
    """One OTLP counter sample through the gateway with the OpenTelemetry SDK."""
    preflight(ep)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    results: list = []

    class Recording(OTLPMetricExporter):
        def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs):
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            results.append(result)
            return result

    kwargs = exporter_kwargs(ep, tenant, "metrics")
    answers = _Answers(kwargs["session"])
    exporter = Recording(**kwargs, timeout=10)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": VERIFY_SERVICE, "service.instance.id": VERIFY_SERVICE}),
        metric_readers=[reader],
    )
    with answers:
        provider.get_meter("obskit.verify").create_counter("obskit.verify.marker").add(1, {"marker": marker})
        reader.force_flush()
        provider.shutdown()
    if not results or any(getattr(r, "name", r) != "SUCCESS" for r in results):
        raise CheckFailed(answers.failure(ep, tenant, "metrics"))


# --------------------------------------------------------------------------- queries


def query_logs(ep: Endpoints, tenant: str, logql: str, *, since_seconds: int = 3600, headers=None) -> list:
    """Streams a LogQL query returns, read through the gateway as ``tenant``'s reader."""
    now = time.time_ns()
    r = ep.session(tenant).get(
        f"{ep.gateway}/loki/api/v1/query_range",
        params={"query": logql, "start": now - since_seconds * 10**9, "end": now, "limit": 100},
        headers=headers or {},
        timeout=15,
    )
    if r.status_code != 200:
        raise CheckFailed(f"LogQL query as {tenant}-read answered {r.status_code}: {_first_line(r.text)}")
    return r.json()["data"]["result"]


def query_metrics(ep: Endpoints, tenant: str, promql: str, *, headers=None) -> list:
    """Series a PromQL instant query returns, read through the gateway as ``tenant``'s reader."""
    r = ep.session(tenant).get(
        f"{ep.gateway}/prometheus/api/v1/query", params={"query": promql}, headers=headers or {}, timeout=15
    )
    if r.status_code != 200:
        raise CheckFailed(f"PromQL query as {tenant}-read answered {r.status_code}: {_first_line(r.text)}")
    return r.json()["data"]["result"]


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:160] if lines else ""


def _until(deadline: float, probe: Callable[[], bool], what: str) -> None:
    last = ""
    while True:
        try:
            if probe():
                return
        except CheckFailed as exc:
            last = str(exc)
        except OSError as exc:  # requests' connection errors derive from OSError
            last = short_error(exc)
        if time.monotonic() >= deadline:
            raise CheckFailed(f"{what} not seen before the deadline" + (f" (last: {last})" if last else ""))
        time.sleep(1)


# --------------------------------------------------------------------------- runner


class Runner:
    def __init__(self, ep: Endpoints, deadline_seconds: int = 60) -> None:
        self.ep = ep
        self.deadline_seconds = deadline_seconds
        self.state = _State()

    def _tenants(self, case: VerifyCase) -> tuple[str, str | None]:
        tenant = case.tenant or self.ep.tenants[0]
        other = case.other_tenant or next((t for t in self.ep.tenants if t != tenant), None)
        return tenant, other

    def run_case(self, case: VerifyCase) -> Outcome:
        start = time.monotonic()
        deadline = start + (case.deadline_seconds or self.deadline_seconds)
        try:
            detail = getattr(self, f"_{case.kind}")(case, deadline)
            ok = True
        except CheckFailed as exc:
            ok, detail = False, str(exc)
        except OSError as exc:
            ok, detail = False, short_error(exc)
        except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check, reported
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        return Outcome(case.name, case.kind, ok, round(time.monotonic() - start, 3), detail)

    def run(self, cases: Sequence[VerifyCase], on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        outcomes = []
        for case in cases:
            outcome = self.run_case(case)
            outcomes.append(outcome)
            if on_result:
                on_result(outcome)
        return outcomes

    # -- pushes, then queries
    def _logs(self, case, deadline) -> str:
        tenant, _ = self._tenants(case)
        marker = uuid.uuid4().hex
        push_log(self.ep, tenant, marker)
        query = '{service_name="%s"} |= "%s"' % (VERIFY_SERVICE, marker)
        _until(deadline, lambda: bool(query_logs(self.ep, tenant, query)), f"log marker {marker} in {tenant}")
        self.state.log_marker, self.state.log_tenant = marker, tenant
        return f"pushed as {tenant}-write, read back as {tenant}-read with {query}"

    def _metrics(self, case, deadline) -> str:
        tenant, _ = self._tenants(case)
        marker = uuid.uuid4().hex
        push_metric(self.ep, tenant, marker)
        query = '%s{marker="%s"}' % (metric_name(self.ep), marker)
        _until(deadline, lambda: bool(query_metrics(self.ep, tenant, query)), f"metric marker {marker} in {tenant}")
        self.state.metric_marker, self.state.metric_tenant = marker, tenant
        return f"pushed as {tenant}-write, read back as {tenant}-read with {query}"

    def _isolation(self, case, signal: str) -> str:
        """Another tenant's reader must not see the marker the logs/metrics check pushed."""
        marker = getattr(self.state, f"{signal}_marker")
        if not marker:
            raise CheckFailed(f"needs the {signal}s check to have pushed a marker first")
        owner = getattr(self.state, f"{signal}_tenant")
        _, other = self._tenants(case.model_copy(update={"tenant": owner}))
        if other is None:
            raise CheckFailed("needs a second tenant")
        if signal == "log":
            query, fetch = '{service_name="%s"} |= "%s"' % (VERIFY_SERVICE, marker), query_logs
        else:
            query, fetch = '%s{marker="%s"}' % (metric_name(self.ep), marker), query_metrics
        # Even a forged X-Scope-OrgID must not reach the owner's data.
        if fetch(self.ep, other, query, headers={"X-Scope-OrgID": owner}):
            raise CheckFailed(f"{other}-read can see {owner}'s {signal}s")
        return f"{other}-read sees none of {owner}'s {signal}s, even with X-Scope-OrgID: {owner}"

    def _isolation_logs(self, case, deadline) -> str:
        return self._isolation(case, "log")

    def _isolation_metrics(self, case, deadline) -> str:
        return self._isolation(case, "metric")

    # -- user queries
    def _logql(self, case, deadline) -> str:
        tenant, _ = self._tenants(case)
        return self._expect(case, deadline, lambda: query_logs(self.ep, tenant, case.query), tenant)

    def _promql(self, case, deadline) -> str:
        tenant, _ = self._tenants(case)
        return self._expect(case, deadline, lambda: query_metrics(self.ep, tenant, case.query), tenant)

    def _expect(self, case, deadline, fetch, tenant) -> str:
        if case.expect == "empty":
            result = fetch()
            if result:
                raise CheckFailed(f"expected no results, got {len(result)}")
            return f"no results for {tenant}, as expected"
        _until(deadline, lambda: bool(fetch()), f"results of {case.query}")
        return f"results for {tenant}"

    # -- Grafana
    def _grafana_get(self, path: str):
        s = self.ep.session()
        s.auth = self.ep.grafana_admin
        r = s.get(f"{self.ep.grafana}{path}", timeout=15)
        return r

    def _grafana_health(self, case, deadline) -> str:
        def healthy() -> bool:
            r = self._grafana_get("/api/health")
            if r.status_code != 200:
                raise CheckFailed(f"/api/health answered {r.status_code}")
            body = r.json()
            if body.get("database") != "ok":
                raise CheckFailed(f"database is {body.get('database')!r}")
            self.state.extra["grafana_version"] = body.get("version", "?")
            return True

        _until(deadline, healthy, "a healthy Grafana")
        return f"Grafana {self.state.extra.get('grafana_version')} is up, database ok"

    def _grafana_datasources(self, case, deadline) -> str:
        bad = []
        for uid in self.ep.datasource_uids:
            r = self._grafana_get(f"/api/datasources/uid/{uid}/health")
            if r.status_code != 200 or r.json().get("status") != "OK":
                bad.append(f"{uid}: {r.status_code} {_first_line(r.text)}")
        if bad:
            raise CheckFailed("; ".join(bad))
        return f"{len(self.ep.datasource_uids)} datasources healthy by uid"

    def _grafana_dashboards(self, case, deadline) -> str:
        r = self._grafana_get("/api/search?type=dash-db&limit=5000")
        if r.status_code != 200:
            raise CheckFailed(f"/api/search answered {r.status_code}")
        present = {d.get("uid") for d in r.json()}
        missing = sorted(set(self.ep.dashboard_uids) - present)
        if missing:
            raise CheckFailed("missing dashboards: " + ", ".join(missing))
        return f"{len(self.ep.dashboard_uids)} dashboards present"

    def _grafana_alerting(self, case, deadline) -> str:
        """Every provisioned rule and contact point is loaded (by uid and name, never by id)."""
        def loaded() -> bool:
            r = self._grafana_get("/api/v1/provisioning/alert-rules")
            if r.status_code != 200:
                raise CheckFailed(f"/api/v1/provisioning/alert-rules answered {r.status_code}")
            rules = {rule.get("uid") for rule in r.json()}
            self.state.extra["missing_rules"] = sorted(set(self.ep.rule_uids) - rules)
            r = self._grafana_get("/api/v1/provisioning/contact-points")
            if r.status_code != 200:
                raise CheckFailed(f"/api/v1/provisioning/contact-points answered {r.status_code}")
            names = {point.get("name") for point in r.json()}
            self.state.extra["missing_contacts"] = sorted(set(self.ep.contact_points) - names)
            return not (self.state.extra["missing_rules"] or self.state.extra["missing_contacts"])

        try:
            _until(deadline, loaded, "every provisioned alert rule and contact point")
        except CheckFailed:
            missing = self.state.extra.get("missing_rules", []) + self.state.extra.get("missing_contacts", [])
            if missing:
                raise CheckFailed("not loaded: " + ", ".join(missing)) from None
            raise
        return f"{len(self.ep.rule_uids)} alert rules and {len(self.ep.contact_points)} contact points loaded"


def cases_for_endpoints(spec: Spec, ep: Endpoints, kinds: Iterable[str] | None = None) -> list[VerifyCase]:
    """The cases that apply to the stack behind ``ep`` (what it runs)."""
    return cases_for(spec, kinds, skip_grafana=not ep.has_grafana, skip_metrics=not ep.has_mimir)


def run_verify(ep: Endpoints, cases: Sequence[VerifyCase], *, deadline_seconds: int = 60,
               on_result: Callable[[Outcome], None] | None = None, env_name: str | None = None) -> list[Outcome]:
    """Run ``cases`` in order. Raises :class:`GatewayUnreachable` first when the gateway
    refuses connections or another stack answers there; ``env_name`` goes into its hint."""
    if cases:
        ensure_gateway_answers(ep, env_name=env_name)
    return Runner(ep, deadline_seconds).run(cases, on_result)


def report(outcomes: Sequence[Outcome]) -> str:
    """A plain-text report, one line per check."""
    lines = []
    for o in outcomes:
        lines.append(f"{'PASS' if o.ok else 'FAIL'}  {o.seconds:6.2f}s  {o.name}: {o.detail}")
    passed = sum(o.ok for o in outcomes)
    lines.append(f"{passed} passed, {len(outcomes) - passed} failed")
    return "\n".join(lines)


def outcomes_json(outcomes: Sequence[Outcome]) -> str:
    return json.dumps([o.to_json() for o in outcomes], indent=2, sort_keys=True)


def provisioned_alerting(configs_dir) -> tuple[list[str], list[str]]:
    """(alert rule uids, contact point names) from a rendered configs/ folder."""
    from pathlib import Path

    from obskit.alerting import ALERTING_DIR, provisioned_rules

    files = {f"{ALERTING_DIR}/{p.name}": p.read_bytes()
             for p in sorted((Path(configs_dir) / "grafana" / "provisioning" / "alerting").glob("*.yaml"))}
    rules = [rule["uid"] for _rel, _grp, rule in provisioned_rules(files)]
    contacts = [c["name"] for data in files.values() for c in (yaml.safe_load(data) or {}).get("contactPoints", [])]
    return rules, contacts


def provisioned_uids(configs_dir) -> tuple[list[str], list[str]]:
    """(datasource uids, dashboard uids) from a rendered configs/ folder."""
    from pathlib import Path

    configs_dir = Path(configs_dir)
    ds: list[str] = []
    for path in sorted((configs_dir / "grafana" / "provisioning" / "datasources").glob("*.yaml")):
        ds += [d["uid"] for d in (yaml.safe_load(path.read_text()) or {}).get("datasources", [])]
    dash = [json.loads(p.read_text())["uid"] for p in sorted((configs_dir / "grafana" / "dashboards").rglob("*.json"))]
    return ds, dash
