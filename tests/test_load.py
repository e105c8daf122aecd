"""The load generator, for real: hand-encoded OTLP decoded by the official protobuf
classes; runs through the real nginx gateway (TLS, per-tenant auth and rate limits) into
a counting OTLP sink; the counts, the 429s and the report must agree exactly."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from obskit import loopback
from obskit.errors import UsageError
from obskit.loadgen import report as report_mod
from obskit.loadgen import wire
from obskit.loadgen.run import run
from obskit.loadgen.scenario import Scenario, available, items_until, load_scenario, rate_at
from obskit.loadgen.sink import Sink
from obskit.loadgen.api import target_for
from obskit.render import render, write_environment
from obskit.spec.load import load_spec

from conftest import require_tool
from support import running_gateway

# --------------------------------------------------------------------------- encoding


def test_log_requests_decode_with_the_official_classes():
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    stream = wire.LogStream("svc-00001", "loadgen-t", random.Random(1), body_bytes=200)
    now = time.time_ns()
    body = stream.resource_logs(300, now) + stream.resource_logs(5, now)
    req = ExportLogsServiceRequest.FromString(body)
    assert len(req.resource_logs) == 2
    attrs = {kv.key: kv.value.string_value for kv in req.resource_logs[0].resource.attributes}
    assert attrs["service.name"] == "svc-00001" and attrs["service.namespace"] == "loadgen-t"
    records = [r for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert len(records) == 305
    stamps = [r.time_unix_nano for r in records]
    assert stamps == sorted(stamps) and len(set(stamps)) == 305  # unique: Loki never de-duplicates them
    assert all(len(r.body.string_value) >= 199 for r in records)
    assert {r.severity_text for r in records} <= {"INFO", "WARN", "ERROR", "DEBUG"}
    assert {kv.key for kv in records[0].attributes} == {"http.request.method", "http.route", "http.response.status_code"}


def test_metric_requests_decode_and_never_repeat_a_series_timestamp():
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    series = wire.SeriesSet("svc-00002", "loadgen-t", range(3))
    now_ms = int(time.time() * 1000)
    seen: dict[str, list[int]] = {}
    for _ in range(3):  # the same millisecond, three times: timestamps must still advance
        req = ExportMetricsServiceRequest.FromString(series.resource_metrics(7, now_ms, 1.0))
        (metric,) = req.resource_metrics[0].scope_metrics[0].metrics
        assert metric.name == "loadgen.value" and metric.unit == ""
        for p in metric.gauge.data_points:
            seen.setdefault(p.attributes[0].value.string_value, []).append(p.time_unix_nano)
    assert sum(len(v) for v in seen.values()) == 21
    for stamps in seen.values():
        assert stamps == sorted(set(stamps))


# --------------------------------------------------------------------------- scenarios


def test_shipped_scenarios_all_load():
    assert set(available()) >= {"steady", "ramp", "spike", "high-cardinality", "noisy-neighbour"}
    for name in available():
        sc = load_scenario(name)
        assert sc.duration_s > 0 and sc.tenants
    assert load_scenario("noisy-neighbour").tenants[1].tenant == "sandbox"


def test_rate_profile_is_piecewise_linear_and_integrates():
    sc = load_scenario("ramp")
    logs = sc.tenants[0].logs
    assert rate_at(logs, 0) == 1000 and rate_at(logs, 120) == 40000 and rate_at(logs, 60) == pytest.approx(20500)
    assert items_until(logs, 120) == pytest.approx((1000 + 40000) / 2 * 120)
    spike = load_scenario("spike").tenants[0].logs
    assert rate_at(spike, 30) == 30000 and rate_at(spike, 50) == 3000


def test_bad_scenarios_are_refused_clearly(tmp_path):
    with pytest.raises(UsageError, match="no scenario 'nope'"):
        load_scenario("nope")
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nservices: 1\nseries_per_service: 1\ntenants: [{points: [{at: 0s, rate: 5000}]}]\n")
    with pytest.raises(UsageError, match="more than one point per series per millisecond"):
        load_scenario(str(path))
    path.write_text("name: x\nduration: soon\ntenants: [{logs: [{at: 0s, rate: 1}]}]\n")
    with pytest.raises(UsageError, match="bad duration"):
        load_scenario(str(path))


# --------------------------------------------------------------------------- through the gateway

# sandbox's limit is far below what it offers, so it is exceeded even when a busy machine
# slows the generator (it once sent only 20 requests in 4 s: exactly a 4/s limit's share).
QUIET_RATE, NOISY_RATE, NOISY_BURST = 1000, 1, 1


@pytest.fixture(scope="module")
def gateway_and_sink(tmp_path_factory):
    """The real gateway with the loopback bindings; Loki's and every Mimir replica's port
    answered by one counting sink. apps may send freely, sandbox is held to 1 request/s."""
    require_tool("nginx", "apt-get install nginx")
    tmp = tmp_path_factory.mktemp("load")
    resolved = load_spec(None, environ={}, use_default_file=False, sets=[
        f"tenants[0].limits.requests_per_second={QUIET_RATE}", f"tenants[0].limits.burst={QUIET_RATE}",
        f"tenants[1].limits.requests_per_second={NOISY_RATE}", f"tenants[1].limits.burst={NOISY_BURST}",
    ])
    write_environment(render(resolved, "local"), tmp / "env")
    plan = loopback.plan(resolved.spec, tmp / "env", tmp / "work")
    sink = Sink([plan.ports["loki"]["http"], *[plan.ports[r]["http"] for r in resolved.spec.mimir_replicas]]).start()
    try:
        with running_gateway(plan, tmp) as (base, ca):
            target = target_for(loopback.endpoints(plan, str(ca)), ["apps", "sandbox"])
            yield {"target": target, "sink": sink, "access_log": Path(plan.env["gateway"]["OBSKIT_GW_ACCESS_LOG"])}
    finally:
        sink.stop()


def access_log_statuses(path: Path, user: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("user") == user and entry.get("route") in ("loki_otlp", "mimir_otlp"):
            out[entry["status"]] = out.get(entry["status"], 0) + 1
    return out


def test_counts_429s_and_report_agree_exactly_with_the_sink_and_the_gateway(gateway_and_sink, tmp_path):
    env = gateway_and_sink
    scenario = Scenario.model_validate({
        "name": "gateway-test", "duration": "4s", "workers": 2, "services": 8, "series_per_service": 20,
        "batch_logs": 250, "batch_points": 500, "retries": 1,
        "tenants": [
            {"tenant": "apps", "logs": [{"at": 0, "rate": 4000}], "points": [{"at": 0, "rate": 8000}]},
            {"tenant": "sandbox", "logs": [{"at": 0, "rate": 6000}]},  # 24 requests/s against a limit of 1
        ],
    })
    before = env["sink"].counts.snapshot()
    live = run(scenario, env["target"], tenants={None: "apps", "apps": "apps", "sandbox": "sandbox"})
    assert live.lost_workers == 0
    after = env["sink"].counts.snapshot()

    def got(tenant: str, key: str) -> int:
        return after.get(tenant, {}).get(key, 0) - before.get(tenant, {}).get(key, 0)

    apps_logs, apps_points, noisy = live.totals["apps/logs"], live.totals["apps/metrics"], live.totals["sandbox/logs"]
    # Nothing is lost in the counting: target = offered + not sent, offered = accepted +
    # rejected + failed, every stream.
    for t in live.totals.values():
        assert t["target"] == t["offered"] + sum(t["not_sent"].values())
        assert t["offered"] == t["accepted"] + sum(t["rejected"].values()) + t["failed"]
    # Open loop: the flood is offered at its own rate (24 requests/s), not at the rate the
    # limit lets through (the old sequential sender slept through every Retry-After).
    assert noisy["target"] == 24000 and noisy["requests"] >= 5 * NOISY_RATE * 4
    # The quiet tenant: everything offered arrived, and the sink saw exactly that.
    assert apps_logs["accepted"] == apps_logs["offered"] > 10000
    assert got("apps", "logs") == apps_logs["accepted"]
    assert got("apps", "points") == apps_points["accepted"] == apps_points["offered"]
    # The noisy tenant: rejected with 429, and the sink holds exactly what was accepted.
    assert noisy["rejected"].get("429", 0) > 0, noisy
    assert got("sandbox", "logs") == noisy["accepted"]
    # Every 429 the generator counted is one the gateway logged, and the other way round.
    logged = access_log_statuses(env["access_log"], "sandbox-write")
    assert noisy["responses"].get("429") == logged.get(429)
    assert noisy["responses"].get("200", 0) == logged.get(200, 0)
    assert noisy["retries"] > 0

    limits = {"apps": {"requests_per_second": QUIET_RATE, "burst": QUIET_RATE},
              "sandbox": {"requests_per_second": NOISY_RATE, "burst": NOISY_BURST}}
    report = report_mod.build(live, scenario, env["target"].base_url, None, limits)
    assert report["balanced"] is True
    assert report["tenants"]["sandbox"]["times_limit"] >= 5
    assert report["totals"]["apps/logs"]["accepted"] == got("apps", "logs")
    assert report["totals"]["sandbox/logs"]["rejected"]["429"] == noisy["rejected"]["429"]
    assert sum(r["accepted"] for r in report["timeline"] if r["key"] == "apps/metrics") == got("apps", "points")
    assert report["totals"]["apps/logs"]["latency_ms"]["p99"] is not None
    files = report_mod.write(report, tmp_path / "report")
    names = {p.name for p in files}
    retried = any(t["retries"] for t in report["totals"].values())
    assert names == {"report.json", "throughput.png", "latency.png", "freshness.png"} | ({"retries.png"} if retried else set())
    # 429s per second, by cause, add up to the rejections the plot stacks
    rows = [r for r in report["timeline"] if r["key"] == "sandbox/logs"]
    assert sum(r["rejected_by"].get("429", 0) for r in rows) == report["totals"]["sandbox/logs"]["rejected"]["429"]
    for p in files:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "report" / "report.json").read_text())["totals"] == report["totals"]
    text = report_mod.summary(report)
    assert "429" in text and "counts balance" in text


def test_load_command_without_a_running_stack_says_so(run_obskit):
    result = run_obskit("load", "steady")
    assert result.returncode != 0
    assert "obskit up" in result.stderr


# --------------------------------------------------------------------------- isolation


ISOLATION_SCENARIO = {
    "name": "isolation-test", "duration": "4s", "services": 4, "series_per_service": 50,
    "batch_logs": 200, "batch_points": 200, "log_content": {"variety": "fast"},
    "isolation": {"tenant": "apps", "window": ["1s", "4s"], "rounds": 1},
    "tenants": [
        {"tenant": "apps", "logs": [{"at": 0, "rate": 2000}]},  # 10 requests/s
        {"tenant": "sandbox", "retries": 0, "max_in_flight": 8,  # 30 + 30 requests/s: 6x its limit
         "logs": [{"at": 0, "rate": 6000}], "points": [{"at": 0, "rate": 6000}]},
    ],
}


@pytest.fixture(scope="module")
def limited_gateway(tmp_path_factory):
    """The real gateway (apps limited to 100 requests/s, sandbox to 10) in front of one
    counting sink on Loki's and every Mimir replica's port."""
    require_tool("nginx", "apt-get install nginx")
    tmp = tmp_path_factory.mktemp("isolation")
    resolved = load_spec(None, environ={}, use_default_file=False, sets=[
        "tenants[0].limits.requests_per_second=100", "tenants[0].limits.burst=100",
        "tenants[1].limits.requests_per_second=10", "tenants[1].limits.burst=10",
    ])
    write_environment(render(resolved, "local"), tmp / "env")
    plan = loopback.plan(resolved.spec, tmp / "env", tmp / "work")
    sink = Sink([plan.ports["loki"]["http"], *[plan.ports[r]["http"] for r in resolved.spec.mimir_replicas]]).start()
    try:
        with running_gateway(plan, tmp) as (base, ca):
            ep = loopback.endpoints(plan, str(ca))
            yield {"resolved": resolved, "ep": ep, "target": target_for(ep, ["apps", "sandbox"]),
                   "limits": {t.name: t.limits.model_dump() for t in resolved.spec.tenants}}
    finally:
        sink.stop()


def test_the_isolation_baseline_sends_exactly_what_the_real_gateway_lets_through(limited_gateway):
    """noisy-neighbour's baseline run has the neighbour at its gateway limit, derived from
    the spec: the real gateway must accept all of it (not one 429), while the flood run at
    6x is refused above the limit. If the generator's idea of the limit and nginx's parted
    (the unit, the burst, per signal or per credential), the baseline would be refused too
    or would not reach the limit."""
    from obskit.loadgen.isolation import baseline_scenario, compare

    env = limited_gateway
    sc = Scenario.model_validate(ISOLATION_SCENARIO)
    tenants = {None: "apps", "apps": "apps", "sandbox": "sandbox"}
    plain = baseline_scenario(sc, tenants, env["limits"])
    baseline = run(plain, env["target"], tenants=tenants)
    flood = run(sc, env["target"], tenants=tenants)
    for key in ("sandbox/logs", "sandbox/metrics"):
        b, f = baseline.totals[key], flood.totals[key]
        assert set(b["responses"]) == {"200"} and b["accepted"] == b["offered"] == b["target"] > 0, b
        assert f["rejected"].get("429", 0) > 0, f
    iso = compare([baseline], [flood], sc, env["limits"])
    assert iso["runs"]["baseline"]["neighbours"]["sandbox"]["times_limit"] == pytest.approx(1.0, abs=0.1)
    assert iso["runs"]["flood"]["neighbours"]["sandbox"]["times_limit"] >= 5
    # The quiet tenant got everything through in both runs.
    assert iso["judged"]["logs accepted_per_s"] == {"change": 0.0, "verdict": "within"}
    assert iso["runs"]["flood"]["signals"]["logs"]["requests"] == 30


def test_obskit_load_runs_the_rounds_and_writes_the_flood_and_baseline_reports(limited_gateway, tmp_path,
                                                                                monkeypatch):
    """What `obskit load noisy-neighbour` does, against the real gateway: alternating
    baseline and flood runs, one isolation verdict over all of them, the last flood run's
    report and plots, and the last baseline run's in baseline/."""
    import yaml

    import obskit.stack
    from obskit.loadgen.api import load

    env = limited_gateway
    monkeypatch.setattr(obskit.stack, "endpoints", lambda project, name: env["ep"])
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "isolation.yaml"
    path.write_text(yaml.safe_dump({**ISOLATION_SCENARIO, "duration": "6s",
                                    "isolation": {**ISOLATION_SCENARIO["isolation"], "window": ["2s", "6s"],
                                                  "rounds": 2}}))
    ticks: list[str] = []
    result = load(env["resolved"], "local", str(path), duration="3s", out=tmp_path / "out", count=False,
                  freshness=False, on_tick=lambda live: ticks.append(live.label))
    iso = result.report["isolation"]
    # --duration halves the run; the window keeps its place in it
    assert iso["measured"] and iso["rounds"] == 2 and iso["window_s"] == [1.0, 3.0]
    assert len(set(iso["runs"]["baseline"]["run_ids"] + iso["runs"]["flood"]["run_ids"])) == 4
    assert iso["runs"]["flood"]["run_ids"][-1] == result.report["run_id"]
    assert iso["runs"]["baseline"]["neighbours"]["sandbox"]["times_limit"] == pytest.approx(1.0, abs=0.1)
    assert set(iso["judged"]) == {"logs accepted_per_s", "latency p50_ms", "latency p90_ms", "latency p99_ms"}
    # the rounds in order, as the progress line names them
    # the rounds in order, as the progress line names them; which run goes first alternates
    assert list(dict.fromkeys(ticks)) == ["round 1/2, baseline run (no flood)", "round 1/2, flood run",
                                          "round 2/2, flood run", "round 2/2, baseline run (no flood)"]
    assert iso["verdict"] == "inconclusive" and iso["too_few_rounds"]  # 2 rounds: no latency verdict
    names = {p.relative_to(tmp_path / "out").as_posix() for p in result.files}
    assert {"report.json", "throughput.png", "baseline/report.json", "baseline/throughput.png"} <= names
    plain = json.loads((tmp_path / "out" / "baseline" / "report.json").read_text())
    assert plain["scenario"] == "isolation-test-baseline" and plain["isolation"] is None or plain["isolation"]
    assert set(plain["totals"]["sandbox/logs"]["responses"]) == {"200"}
    assert "isolation: apps over 1-3 s of 2 flood runs" in report_mod.summary(result.report)


def test_obskit_load_says_when_another_stack_answers(limited_gateway, tmp_path, monkeypatch):
    """The gateway on the environment's port is not signed by its CA (another project's
    stack holds the port): load says so before it sends anything."""
    import dataclasses

    import obskit.stack
    from obskit import pki
    from obskit.loadgen.api import load
    from obskit.loadgen.api import LoadError

    env = limited_gateway
    other = tmp_path / "other-ca.pem"
    other.write_text(pki.new_ca("somebody else").cert_pem)
    monkeypatch.setattr(obskit.stack, "endpoints",
                        lambda project, name: dataclasses.replace(env["ep"], ca_file=str(other)))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LoadError) as caught:  # load's exit code 5: it could not reach this stack's gateway
        load(env["resolved"], "local", "steady", duration="1s", out=tmp_path / "out", count=False, freshness=False)
    assert caught.value.exit_code == 5
    assert "another stack answers" in str(caught.value) and "`obskit status --env local`" in caught.value.hint
    assert not (tmp_path / "out").exists()
