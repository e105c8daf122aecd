"""Annotations obskit writes to Grafana (obskit/annotate.py): their content, and that a
Grafana that does not answer never fails the command. The annotation reaching a real Grafana
and showing on every dashboard is proven in tests/test_stack_proof.py."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from obskit import __version__, annotate
from obskit.annotate import Event
from obskit.loopback import free_port
from obskit.verify import Endpoints

SECRET = "s3cr3t-admin-password"


def endpoints(port: int, *, has_grafana: bool = True) -> Endpoints:
    return Endpoints(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/grafana", None, {}, ("admin", SECRET),
                     ["apps"], [], [], has_grafana=has_grafana)


def test_the_body_says_who_what_where_which_version_and_which_spec():
    event = Event("load", "local", "obskit load steady: PASS", {"scenario": "steady", "verdict": "PASS"},
                  spec_sha256="ab" * 32)
    b = annotate.body(event, now_ms=1_700_000_000_000, author="alice@laptop")
    assert b["time"] == 1_700_000_000_000
    assert b["tags"] == ["obskit", "obskit-load", "env:local"]
    lines = b["text"].splitlines()
    assert lines[0] == "obskit load steady: PASS"
    assert {"by: alice@laptop", "environment: local", f"obskit: {__version__}", f"spec: {'ab' * 6}",
            "scenario: steady", "verdict: PASS"} <= set(lines)
    # an organization annotation: no dashboard id, so every dashboard's tag query finds it
    assert "dashboardUID" not in b and "dashboardId" not in b


def test_who_is_user_at_host():
    user, _, host = annotate.who().partition("@")
    assert user and host


def test_a_grafana_that_does_not_answer_is_an_outcome_not_an_error():
    port = free_port()  # nothing listens
    out = annotate.write(endpoints(port), Event("up", "local", "obskit up"), timeout=2)
    assert not out.written
    assert "did not answer (connection refused or unreachable)" in out.detail
    assert out.line().startswith("annotation not written: Grafana at http://127.0.0.1:")


def test_a_stack_without_grafana_is_said_so():
    out = annotate.write(endpoints(free_port(), has_grafana=False), Event("up", "process", "obskit up"))
    assert out == annotate.Outcome(False, "the 'process' stack runs without Grafana")


class _Grafana(http.server.BaseHTTPRequestHandler):
    status = 200
    seen: list = []

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        type(self).seen.append((self.path, self.headers.get("Authorization"), json.loads(self.rfile.read(length))))
        payload = (json.dumps({"id": 7, "message": "Annotation added"}) if self.status == 200
                   else json.dumps({"message": f"denied {SECRET}"})).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def grafana_like():
    _Grafana.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Grafana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_annotation_goes_to_grafanas_api_under_its_sub_path(grafana_like):
    _Grafana.status = 200
    out = annotate.write(endpoints(grafana_like.server_port), Event("up", "local", "obskit up"))
    assert out == annotate.Outcome(True, "annotation 7")
    ((path, auth, sent),) = _Grafana.seen
    assert path == "/grafana/api/annotations" and auth.startswith("Basic ")
    assert sent["tags"] == ["obskit", "obskit-up", "env:local"]


@pytest.mark.parametrize("status", [401, 403, 500])
def test_a_refusal_names_the_status_and_never_echoes_the_body(grafana_like, status):
    _Grafana.status = status
    out = annotate.write(endpoints(grafana_like.server_port), Event("up", "local", "obskit up"))
    assert not out.written and out.detail.endswith(f"answered HTTP {status}")
    assert SECRET not in out.line()


def test_the_load_annotation_carries_the_scenario_and_its_verdict():
    from obskit.cli import _load_event

    report = {"scenario": "noisy-neighbour", "duration_s": 30, "run_id": "r1",
              "totals": {"apps/logs": {"offered": 1200}, "sandbox/logs": {"offered": 800}},
              "isolation": {"measured": True, "verdict": "isolated"}}
    event = _load_event(report, "local", None)
    assert event.kind == "load" and event.summary == "obskit load noisy-neighbour: isolated"
    assert event.details["scenario"] == "noisy-neighbour" and event.details["offered"] == "2,000 items"
    assert _load_event(report | {"isolation": None}, "local", None).details["verdict"] == "counts balance"
    assert _load_event(report, "local", object()).details["verdict"] == "counts do not balance"


def test_a_command_whose_stack_cannot_be_found_still_succeeds_and_says_why(capsys):
    from obskit.cli import _annotate
    from obskit.errors import ObskitError

    def nowhere():
        raise ObskitError("no secrets for environment 'local' here")

    out = _annotate(Event("up", "local", "obskit up"), endpoints=nowhere)
    assert out == {"written": False, "detail": "no secrets for environment 'local' here"}
    assert "annotation not written: no secrets for environment 'local' here" in capsys.readouterr().err


def test_every_dashboard_with_a_time_axis_asks_for_obskit_annotations():
    from pathlib import Path

    dashboards = Path(__file__).resolve().parent.parent / "configs" / "grafana" / "dashboards"
    timed = {"timeseries", "barchart", "state-timeline", "logs"}
    for path in sorted(dashboards.glob("*.json")):
        d = json.loads(path.read_text())
        queries = [a for a in d["annotations"]["list"] if (a.get("target") or {}).get("type") == "tags"]
        has_axis = any(p["type"] in timed for p in d["panels"])
        asks = [q for q in queries if q["enable"] and annotate.TAG in q["target"]["tags"]
                and q["datasource"]["uid"] == "-- Grafana --"]
        assert bool(asks) == has_axis, path.name
