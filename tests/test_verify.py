"""The verify runner: cases as data, reporting, and real runs against real servers
(nginx always; Loki and Mimir when their binaries are on PATH)."""

from __future__ import annotations

import json

import pytest

from obskit import loopback
from obskit.errors import SpecError
from obskit.render import render, write_environment
from obskit.spec.load import load_spec
from obskit.tools import nginx
from obskit.verify import GatewayUnreachable, Outcome, builtin_cases, cases_for, outcomes_json, report, run_verify

from conftest import require_tool
from support import Proc, http_ok, wait_until


def test_builtin_cases_are_data_in_order():
    kinds = [c.kind for c in builtin_cases()]
    assert kinds == ["logs", "metrics", "isolation_logs", "isolation_metrics",
                     "grafana_health", "grafana_datasources", "grafana_dashboards", "grafana_alerting"]


def test_spec_extends_the_cases(write_spec):
    path = write_spec(
        """\
        verify:
          deadline_seconds: 30
          cases:
            - name: checkout errors stay away
              kind: logql
              tenant: sandbox
              query: '{service_name="checkout"} |= "panic"'
              expect: empty
        """
    )
    spec = load_spec(path, environ={}).spec
    cases = cases_for(spec)
    assert cases[-1].name == "checkout errors stay away" and cases[-1].expect == "empty"
    assert [c.kind for c in cases_for(spec, ["logql", "logs"])] == ["logs", "logql"]


def test_a_query_case_needs_a_query(write_spec):
    path = write_spec("verify:\n  cases:\n    - name: x\n      kind: promql\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, environ={})
    assert "verify.cases[0].query: a promql check needs a query" in str(info.value)


def test_unknown_case_kind(write_spec):
    path = write_spec("verify:\n  cases:\n    - name: x\n      kind: tempo\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, environ={})
    assert "verify.cases[0].kind" in str(info.value)


def test_report_lines_and_json():
    outcomes = [Outcome("a", "logs", True, 1.234, "ok"), Outcome("b", "metrics", False, 60.0, "not seen")]
    text = report(outcomes)
    assert text.splitlines() == ["PASS    1.23s  a: ok", "FAIL   60.00s  b: not seen", "1 passed, 1 failed"]
    assert json.loads(outcomes_json(outcomes))[1] == {"name": "b", "kind": "metrics", "ok": False, "seconds": 60.0, "detail": "not seen"}


# --------------------------------------------------------------------------- real runs


@pytest.fixture
def gateway_only(tmp_path):
    """The real gateway in front of nothing: every backend is down."""
    require_tool("nginx", "apt-get install nginx")
    resolved = load_spec(None, environ={}, use_default_file=False)
    write_environment(render(resolved, "local"), tmp_path / "env")
    plan = loopback.plan(resolved.spec, tmp_path / "env", tmp_path / "work")
    prepared = nginx.prepare(tmp_path / "env/configs/gateway", plan.env["gateway"])
    ca = tmp_path / "ca.pem"
    ca.write_text(plan.secrets["gateway-ca-cert"])
    gw = Proc("nginx", ["nginx", "-c", str(prepared.conf), "-e", "stderr", "-g", "daemon off;"], {}, tmp_path).start()
    try:
        base = f"https://localhost:{plan.ports['gateway']['https']}"
        wait_until("gateway", lambda: http_ok(f"{base}/nginx-health", verify=str(ca)), 15, [gw])
        yield resolved.spec, loopback.endpoints(plan, str(ca))
    finally:
        gw.stop()


def test_failures_are_reported_not_raised(gateway_only, capfd, caplog):
    spec, ep = gateway_only
    outcomes = run_verify(ep, cases_for(spec), deadline_seconds=2)
    by_kind = {o.kind: o for o in outcomes}
    assert not any(o.ok for o in outcomes)
    # The gateway's answer and where to look, not the SDK's internal result object.
    logs = by_kind["logs"].detail
    assert "did not accept the OTLP logs of apps-write: HTTP 502" in logs and "is Loki up?" in logs, logs
    assert "ExportResult" not in logs and "<" not in logs
    assert "HTTP 502" in by_kind["metrics"].detail and "is Mimir up?" in by_kind["metrics"].detail
    # The OpenTelemetry SDK's own retry and failure lines stay off the terminal (pytest
    # holds the log records that would reach stderr: none may come from the SDK).
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")]
    err = capfd.readouterr().err
    assert "Transient error" not in err and "Failed to export" not in err and "opentelemetry" not in err, err
    assert "needs the logs check to have pushed a marker first" in by_kind["isolation_logs"].detail
    assert "not seen before the deadline" in by_kind["grafana_health"].detail
    assert by_kind["grafana_health"].seconds >= 2


def test_wrong_password_is_a_failed_push(gateway_only):
    spec, ep = gateway_only
    ep.passwords["apps-write"] = "not-the-password"
    outcome = run_verify(ep, cases_for(spec, ["logs"]), deadline_seconds=2)[0]
    assert not outcome.ok and "did not accept" in outcome.detail and "HTTP 401" in outcome.detail
    assert "credential is refused" in outcome.detail


def test_tls_is_verified_against_the_given_ca(gateway_only, tmp_path):
    spec, ep = gateway_only
    from obskit import pki

    other = tmp_path / "other-ca.pem"
    other.write_text(pki.new_ca("somebody else").cert_pem)
    ep.ca_file = str(other)
    # The gateway there is not signed by this CA: another stack answers, said at once (not
    # after every check has waited out its deadline on certificate errors).
    with pytest.raises(GatewayUnreachable) as caught:
        run_verify(ep, cases_for(spec, ["metrics"]), deadline_seconds=2, env_name="dev")
    assert "another stack answers at " + ep.gateway in str(caught.value)
    assert "`obskit status --env dev`" in caught.value.hint
    # The checks themselves still verify TLS against exactly that CA.
    from obskit.verify import Runner

    outcome = Runner(ep, 2).run(cases_for(spec, ["metrics"]), None)[0]
    assert not outcome.ok and ("CERTIFICATE_VERIFY_FAILED" in outcome.detail or "SSL" in outcome.detail)


def test_nothing_listening_names_the_environment_in_the_hint(gateway_only):
    spec, ep = gateway_only
    from obskit.loopback import free_port

    ep.gateway = f"https://localhost:{free_port()}"
    with pytest.raises(GatewayUnreachable) as caught:
        run_verify(ep, cases_for(spec, ["logs"]), deadline_seconds=2, env_name="process")
    assert caught.value.hint == "start it with `obskit up --env process`"
