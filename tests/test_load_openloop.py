"""The generator measures what the scenario asked for: batches go out on a fixed schedule
(open loop), what could not be started is counted as not sent, latency runs from when a
batch was due, OTLP partial_success rejections are counted as rejected, and log content
varies like real logs. Everything runs against the project's counting sink on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import math
import queue as queue_mod
import random
import re
import time

import pytest

from obskit.loadgen import report as report_mod
from obskit.loadgen import wire
from obskit.loadgen.run import Live, plan_workers, run
from obskit.loadgen.scenario import Point, Scenario, load_scenario, seconds
from obskit.loadgen.schedule import Curve, batches
from obskit.loadgen.isolation import IsolationError, baseline_scenario, peak_requests_per_s
from obskit.loadgen.sink import PARTIAL_MESSAGE, Sink
from obskit.loadgen.worker import NOT_SENT_BUSY, NOT_SENT_LATE, PARTIAL, Stats, Target, TaskSender
from obskit.loopback import free_port

AUTH = {"t": "Basic dC13cml0ZTp4"}  # t-write:x; the sink counts by user
TENANTS = {None: "t", "t": "t"}


def profile(*pairs) -> list[Point]:
    return [Point(at=t, rate=r) for t, r in pairs]


def scenario(**kw) -> Scenario:
    base = {"name": "openloop-test", "duration": "3s", "workers": 1, "services": 2, "series_per_service": 20,
            "batch_logs": 100, "batch_points": 200, "tenants": [{"tenant": "t", "logs": [{"at": 0, "rate": 1000}]}]}
    return Scenario.model_validate({**base, **kw})


@pytest.fixture
def sink_factory():
    started = []

    def make(**kw) -> tuple[Sink, Target]:
        port = free_port()
        sink = Sink([port], **kw).start()
        started.append(sink)
        return sink, Target(base_url=f"http://127.0.0.1:{port}", auth=AUTH)

    yield make
    for s in started:
        s.stop()


# --------------------------------------------------------------------------- the schedule


def test_the_schedule_fixes_every_batch_and_sums_to_the_profile():
    steady = list(batches(profile((0, 1000)), 3, 100))
    assert len(steady) == 30 and all(n == 100 for _, n in steady)
    assert [round(d, 6) for d, _ in steady[:3]] == [0.1, 0.2, 0.3] and steady[-1][0] == pytest.approx(3.0)
    ramp = profile((0, 1000), (120, 40000))
    due = list(batches(ramp, 120, 1000, share=0.5))
    assert sum(n for _, n in due) == int(Curve(ramp, 120, 0.5).total) == (1000 + 40000) / 2 * 120 * 0.5
    assert [d for d, _ in due] == sorted(d for d, _ in due)
    # A step (two points at the same time) starts the flood at once; nothing is due before it.
    step = list(batches(profile((0, 0), (30, 0), (30, 6000)), 60, 200))
    assert step[0][0] == pytest.approx(30 + 200 / 6000) and sum(n for _, n in step) == 180000
    # Low rates: a partial batch leaves 0.2 s after its first item was due (no item waits longer).
    slow = list(batches(profile((0, 100)), 3, 1000))
    assert slow[0] == (pytest.approx(0.21), 21) and sum(n for _, n in slow) == 300
    # The spike second really asks for the spike rate (the old sender managed 18% of it).
    spike = load_scenario("spike").tenants[0].points
    per_second: dict[int, int] = {}
    for d, n in batches(spike, 60, 2000):
        per_second[int(d)] = per_second.get(int(d), 0) + n
    assert all(per_second[s] == 100000 for s in range(27, 35))


def test_metric_lanes_never_share_a_series():
    sc = scenario(max_in_flight=8, series_per_service=5, tenants=[{"tenant": "t", "points": [{"at": 0, "rate": 1000}]}])
    (plan,) = plan_workers(sc, Target("http://127.0.0.1:9", AUTH), "r", 1, TENANTS, time.time())
    import threading

    sender = TaskSender(plan, plan.tasks[0], Stats(), threading.Event())
    assert len(sender.lanes) == 8
    owned = [(s.resource, a) for lane in sender.lanes for s in lane.sources for a in s.attrs]
    assert len(owned) == len(set(owned)) == 2 * 5  # every series in exactly one lane


def test_the_in_flight_limit_is_split_over_the_workers():
    sc = scenario(max_in_flight=5, services=4, tenants=[{"tenant": "t", "logs": [{"at": 0, "rate": 100}]},
                                                      {"tenant": "u", "logs": [{"at": 0, "rate": 100}], "max_in_flight": 1}])
    plans = plan_workers(sc, Target("http://x", {"t": "", "u": ""}), "r", 2, {None: "t", "t": "t", "u": "u"}, 0)
    lanes = {}
    for p in plans:
        for task in p.tasks:
            lanes.setdefault(task.tenant, []).append(task.lanes)
    assert lanes == {"t": [3, 2], "u": [1, 1]}  # at least one sender per worker


# --------------------------------------------------------------------------- a sink that always says 429

RETRY_AFTER, RETRIES, LANES = 0.3, 2, 2


def test_against_a_sink_that_always_answers_429_target_offered_and_not_sent_are_exact(sink_factory, tmp_path):
    sink, target = sink_factory(status=429, retry_after=str(RETRY_AFTER))
    sc = scenario(retries=RETRIES, max_in_flight=LANES)
    live = run(sc, target, tenants=TENANTS)
    assert live.lost_workers == 0
    t = live.totals["t/logs"]
    # The schedule asked for 1000 records/s for 3 s: that is the target, whatever the sender managed.
    assert t["target"] == 3000
    not_sent = sum(t["not_sent"].values())
    assert t["offered"] + not_sent == t["target"]
    assert t["accepted"] == 0 and t["rejected"] == {"429": t["offered"]} and t["failed"] == 0
    # Each offered batch holds a sender for its retries (>= 2 x 0.3 s); with two senders at
    # most about 2 x (3 s + 1 s late_after) / 0.6 s batches can start: the rest is not sent.
    hold = RETRIES * RETRY_AFTER
    assert t["requests"] <= LANES * math.ceil((sc.duration_s + seconds(sc.late_after)) / hold + 1)
    assert not_sent >= 3000 - 100 * t["requests"] > 0
    # Held senders, not the generator, stopped these batches: a dispatcher that is late only
    # because it waited for a sender says "no free sender" (exact: the test with a virtual
    # clock below); "generator behind" needs a stall of the generator's own longer than that
    # wait, which only a machine too busy to run the test would cause.
    assert t["not_sent"][NOT_SENT_BUSY] > t["not_sent"].get(NOT_SENT_LATE, 0)
    # What the sink saw: every attempt of every offered batch, and nothing else.
    counted = sink.counts.snapshot()["t-write"]
    assert counted["answered"] == {"429": t["requests"] * (RETRIES + 1)} == {"429": t["responses"]["429"]}
    assert counted["offered_logs"] == t["offered"] * (RETRIES + 1) and counted["logs"] == 0
    assert t["retries"] == t["requests"] * RETRIES

    # Latency runs from when a batch was due: each includes its own retry waits, and a
    # batch that waited for a sender busy with retries includes that wait too. The third
    # batch (due at 0.3 s) could only start when the first freed its sender (>= 0.7 s).
    lat = live.latency["t/logs"]
    assert lat.get_min_value() >= hold * 1e6
    assert lat.get_max_value() >= (0.4 + hold) * 1e6
    assert live.service["t/logs"].get_max_value() < lat.get_max_value()
    per_second = [x for b in live.timeline["t/logs"].values() for x in b["latency_ms"]]
    assert len(per_second) == t["requests"] and min(per_second) >= hold * 1000

    report = report_mod.build(live, sc, target.base_url, None)
    totals = report["totals"]["t/logs"]
    assert report["balanced"] is True
    assert (totals["target"], totals["offered"], totals["not_sent"]) == (3000, t["offered"], not_sent)
    assert totals["latency_ms"]["p99.9"] >= totals["latency_ms"]["p50"] >= hold * 1000
    rows = [r for r in report["timeline"] if r["key"] == "t/logs"]
    assert sum(r["target"] for r in rows) == 3000 and {r["t"] for r in rows} == {0, 1, 2}
    for r in rows:
        assert r["target"] == r["offered"] + r["not_sent"] and r["offered"] == r["rejected"]
        assert r["rejected_by"] == ({"429": r["rejected"]} if r["rejected"] else {})  # by cause, per second
    text = report_mod.summary(report)
    assert "not sent" in text and NOT_SENT_BUSY in text
    # Retries get a plot of their own (requests per second), not a second axis on the throughput plot.
    pytest.importorskip("matplotlib")
    written = {p.name for p in report_mod.write(report, tmp_path / "report")}
    assert {"throughput.png", "latency.png", "retries.png"} <= written


class VirtualClock:
    """The dispatcher's clock, advanced only by the test and by waiting: the dispatcher's
    decisions (on time, late, no free sender) then do not depend on how busy the machine is."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def wait(self, event, seconds: float) -> bool:
        self.now += max(0.0, seconds)
        return event.is_set()


def test_a_generator_that_falls_behind_counts_what_it_could_not_start(sink_factory, monkeypatch):
    """Encoding slower than the schedule: the batches it reaches too late are not sent
    (reason: generator behind), and it catches up by skipping them, not by sending late.
    The clock is virtual, so the outcome is exact on any machine."""
    import threading

    from obskit.loadgen import worker
    from obskit.loadgen.run import plan_workers

    sink, target = sink_factory()
    clock = VirtualClock()
    # More lanes than batches it can offer: a lane is always free, so "no free sender" never applies.
    sc = scenario(duration="1s", batch_logs=10, late_after="20ms", max_in_flight=64)
    (plan,) = plan_workers(sc, target, "r", 1, TENANTS, clock.now + 0.2)
    stats = Stats()
    sender = TaskSender(plan, plan.tasks[0], stats, threading.Event(), clock=clock)
    encode = sender._encode

    def slow_encode(*args):
        clock.now += 0.055  # 55 ms per batch against a batch due every 10 ms
        return encode(*args)

    monkeypatch.setattr(sender, "_encode", slow_encode)
    sender.run()
    assert stats.target == 1000
    assert stats.offered + sum(stats.not_sent.values()) == 1000
    assert set(stats.not_sent) == {worker.NOT_SENT_LATE}
    # Each batch it encodes costs 5.5 due intervals: it offers one batch in about every 6.
    assert 100 // 7 <= stats.requests <= 100 // 5 and stats.not_sent[worker.NOT_SENT_LATE] >= 800
    assert stats.accepted == stats.offered == sink.counts.snapshot()["t-write"]["logs"]


def test_a_dispatcher_late_only_because_it_waited_for_a_lane_blames_the_lanes(sink_factory):
    """Every lane held (a sink that never answers in time): the dispatcher waits late_after
    for a lane on each batch and so falls behind the schedule; those batches are 'no free
    sender', never 'generator behind', however long the waits took."""
    import threading

    from obskit.loadgen import worker

    clock = VirtualClock()
    sink, target = sink_factory()
    sc = scenario(duration="1s", batch_logs=10, late_after="50ms", max_in_flight=1)
    (plan,) = plan_workers(sc, target, "r", 1, TENANTS, clock.now + 0.2)
    stats = Stats()
    sender = TaskSender(plan, plan.tasks[0], stats, threading.Event(), clock=clock)
    held = sender.free.get()  # the only lane is busy for the whole run

    class Lanes:
        def get(self, timeout=None):
            clock.now += timeout + 0.3  # waited its time, and the machine was slow to wake it
            raise queue_mod.Empty

        def get_nowait(self):
            raise queue_mod.Empty

        def put(self, lane):
            raise AssertionError("no lane was taken")

    sender.free = Lanes()
    sender._dispatch()
    sender.free = queue_mod.Queue()
    sender.free.put(held)
    assert stats.target == 1000 and stats.offered == 0
    assert stats.not_sent == {worker.NOT_SENT_BUSY: 1000}


def test_a_worker_killed_mid_run_fails_the_balance_and_its_records_are_unknown(sink_factory):
    """A sending process killed (SIGKILL) during the run: the target stays what the schedule
    asked, the records it never reported are 'unknown', the counts do not balance, the
    summary says so, and `obskit load` fails on it."""
    import multiprocessing
    import os
    import signal

    from obskit.loadgen.api import LoadResult, unbalanced_error

    sink, target = sink_factory()
    sc = scenario(duration="3s", workers=2, services=4)
    killed: list[int] = []

    def kill_one(live):
        if not killed and live.totals:  # a worker has reported: the run is under way
            victim = multiprocessing.active_children()[0]
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    live = run(sc, target, tenants=TENANTS, on_tick=kill_one)
    assert killed and live.lost_workers == 1 and live.workers == 2
    report = report_mod.build(live, sc, target.base_url, None)
    t = report["totals"]["t/logs"]
    assert t["target"] == 3000  # the schedule's, not what the survivors reported
    assert t["unknown"] == 3000 - t["not_sent"] - t["accepted"] - t["rejected_total"] - t["failed"] > 0
    assert sink.counts.snapshot()["t-write"]["logs"] >= t["accepted"]
    assert report["balanced"] is False and t["balanced"] is False
    text = report_mod.summary(report)
    assert "LOST 1 of 2 sending processes" in text and "counts balance" in text and text.count(": NO") == 1
    error = unbalanced_error(LoadResult(report, []))
    assert error is not None and error.exit_code == 5 and "unknown outcome" in str(error)


def test_a_balanced_report_is_not_claimed_when_the_counts_do_not_add_up():
    sc = scenario()
    live = Live(started=0, duration=3)
    live.run_id, live.workers, live.lost_workers = "r", 1, 0
    bucket = {"target": 100, "offered": 100, "not_sent": 0, "accepted": 90, "rejected": 0, "failed": 0,
              "retries": 0, "requests": 1, "latency_ms": [5.0]}
    live.absorb(0, {"t/logs": {"totals": {"target": 100, "offered": 100, "accepted": 90, "failed": 0, "retries": 0,
                                          "requests": 1, "not_sent": {}, "rejected": {}, "responses": {"200": 1},
                                          "messages": {}, "bytes_raw": 1, "bytes_sent": 1, "gzip_sample": [0, 0],
                                          "lanes": 1},
                               "seconds": {0: bucket}, "latency_hist": None, "service_hist": None}})
    assert report_mod.build(live, sc, "x", None)["balanced"] is False


# --------------------------------------------------------------------------- partial success


def test_partial_success_rejections_are_counted_as_rejected(sink_factory):
    sink, target = sink_factory(partial_reject=30)
    sc = scenario(duration="2s", tenants=[{"tenant": "t", "logs": [{"at": 0, "rate": 1000}],
                                           "points": [{"at": 0, "rate": 2000}]}])
    live = run(sc, target, tenants=TENANTS)
    counted = sink.counts.snapshot()["t-write"]
    for key, kept, offered in (("t/logs", "logs", "offered_logs"), ("t/metrics", "points", "offered_points")):
        t = live.totals[key]
        assert t["offered"] == t["target"] > 0 and t["failed"] == 0
        assert t["rejected"] == {PARTIAL: 30 * t["requests"]}
        assert t["accepted"] == counted[kept] == counted[offered] - 30 * t["requests"]
    report = report_mod.build(live, sc, target.base_url, None)
    assert report["balanced"] is True
    logs = report["totals"]["t/logs"]
    assert logs["partial_success"]["rejected"] == 30 * logs["requests"]
    assert logs["partial_success"]["messages"] == {PARTIAL_MESSAGE.format(n=30): logs["requests"]}
    assert PARTIAL_MESSAGE.format(n=30) in report_mod.summary(report)


def test_partial_success_is_read_from_protobuf_and_json_answers():
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as pb

    body = pb.ExportLogsServiceResponse(partial_success=pb.ExportLogsPartialSuccess(
        rejected_log_records=7, error_message="too old")).SerializeToString()
    assert wire.partial_success(body) == (7, "too old")
    assert wire.partial_success(b"") == (0, "")
    assert wire.partial_success(pb.ExportLogsServiceResponse().SerializeToString()) == (0, "")
    js = json.dumps({"partialSuccess": {"rejectedDataPoints": "12", "errorMessage": "out of order"}}).encode()
    assert wire.partial_success(js, "application/json") == (12, "out of order")
    assert wire.partial_success(b"\xff\xff\xff", "application/x-protobuf") == (0, "")


# --------------------------------------------------------------------------- content


def decode_logs(body: bytes):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    req = ExportLogsServiceRequest.FromString(body)
    return [r for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records]


@pytest.mark.parametrize("shape", ["text", "json", "stacktrace", "mixed"])
def test_fast_and_realistic_logs_are_valid_otlp(shape):
    bodies = {}
    for variety in ("fast", "realistic"):
        stream = wire.LogStream("svc-00001", "loadgen-t", random.Random(3), body_bytes=160, shape=shape, variety=variety)
        now = time.time_ns()
        request = b"".join(stream.resource_logs(400, now) for _ in range(5))
        records = decode_logs(request)
        assert len(records) == 2000
        stamps = [r.time_unix_nano for r in records]
        assert stamps == sorted(stamps) and len(set(stamps)) == 2000
        texts = [r.body.string_value for r in records]
        assert all(len(t) >= 160 for t in texts)
        if shape == "json":
            assert all(isinstance(json.loads(t), dict) for t in texts)
        if shape == "stacktrace":
            assert all("Traceback (most recent call last):" in t for t in texts)
        for r in records:
            assert {kv.key for kv in r.attributes} == {"http.request.method", "http.route", "http.response.status_code"}
            assert r.severity_text in {"INFO", "WARN", "ERROR", "DEBUG"}
        bodies[variety] = (texts, request)
    assert len(set(bodies["fast"][0])) == 64  # the fast path cycles through its pool
    assert len(set(bodies["realistic"][0])) == 2000  # every realistic record is new
    ratio = {v: len(req) / len(gzip.compress(req, 6)) for v, (_, req) in bodies.items()}
    if shape != "stacktrace":  # 64 stack traces span more than gzip's 32 KB window: no gain to see
        assert ratio["realistic"] < ratio["fast"]


def test_distinct_bodies_per_second_bounds_the_new_records(sink_factory):
    """realistic with distinct_per_s: about that many new bodies a second, the rest repeated."""
    stream = wire.LogStream("svc-00001", "ns", random.Random(1), body_bytes=100, variety="realistic")
    texts = [r.body.string_value for r in decode_logs(stream.resource_logs(500, time.time_ns(), fresh=50))]
    assert len(set(texts)) <= 64 + 50  # the pool plus the fresh ones
    sink, target = sink_factory()
    sc = scenario(duration="2s", log_content={"variety": "realistic", "distinct_per_s": 100})
    live = run(sc, target, tenants=TENANTS)
    t = live.totals["t/logs"]
    assert t["accepted"] == t["target"] == 2000


def test_the_report_states_the_gzip_ratio_of_the_content(sink_factory):
    ratios = {}
    for variety in ("fast", "realistic"):
        sink, target = sink_factory()
        sc = scenario(duration="2s", body_bytes=200, batch_logs=1000, log_content={"variety": variety, "shape": "text"},
                      tenants=[{"tenant": "t", "logs": [{"at": 0, "rate": 2000}]}])
        report = report_mod.build(run(sc, target, tenants=TENANTS), sc, target.base_url, None)
        ratios[variety] = report["totals"]["t/logs"]["bytes"]["gzip_ratio"]
        assert report["log_content"]["variety"] == variety
        assert f"gzip ratio {ratios[variety]}x" in report_mod.summary(report)
    assert 1 < ratios["realistic"] < ratios["fast"]


# --------------------------------------------------------------------------- scenarios


def test_noisy_neighbour_floods_at_least_five_times_the_default_limit():
    from obskit.spec.model import RateLimit

    sc = load_scenario("noisy-neighbour")
    flood = next(t for t in sc.tenants if t.tenant == "sandbox")
    limit = RateLimit().requests_per_second
    assert peak_requests_per_s(flood, sc) >= 5 * limit
    # The flood runs the whole run, and the quiet tenant stays under its own limit.
    assert min(p.t for p in flood.logs + flood.points) == 0
    assert peak_requests_per_s(sc.tenants[0], sc) < limit
    # Enough senders that the flood is offered even while 429s come back.
    assert (flood.max_in_flight or sc.max_in_flight) >= 8 and flood.retries == 0
    # The run without the flood: sandbox at exactly its limit, the quiet tenant unchanged.
    assert sc.isolation is not None and sc.isolation.baseline == "at_limit" and sc.isolation.rounds >= 2
    plain = baseline_scenario(sc, {None: "apps", "sandbox": "sandbox"},
                              {"apps": {"requests_per_second": limit}, "sandbox": {"requests_per_second": limit}})
    assert peak_requests_per_s(plain.tenants[1], plain) == pytest.approx(limit)
    assert plain.tenants[0] == sc.tenants[0]


def test_the_baseline_run_needs_the_neighbours_limit_or_leaves_it_out():
    sc = scenario(isolation={"tenant": "t", "window": ["0s", "3s"]},
                  tenants=[{"tenant": "t", "logs": [{"at": 0, "rate": 100}]},
                           {"tenant": "u", "logs": [{"at": 0, "rate": 100}, {"at": 2, "rate": 2000}]}])
    with pytest.raises(IsolationError, match="needs tenant u's gateway limit"):
        baseline_scenario(sc, {None: "t", "t": "t", "u": "u"}, {})
    # at its peak (2,000 records/s in batches of 100: 20 requests/s) u is scaled to its limit of 5/s
    plain = baseline_scenario(sc, {None: "t", "t": "t", "u": "u"}, {"u": {"requests_per_second": 5}})
    assert [p.rate for p in plain.tenants[1].logs] == [25, 500]
    alone = sc.model_copy(update={"isolation": sc.isolation.model_copy(update={"baseline": "alone"})})
    assert [t.tenant for t in baseline_scenario(alone, {None: "t", "t": "t", "u": "u"}, {}).tenants] == ["t"]


def test_the_quiet_tenant_sends_from_processes_of_its_own():
    """A flood sent from the same process would hold the interpreter lock while the quiet
    tenant's batches wait: the generator would measure itself."""
    sc = scenario(services=4, isolation={"tenant": "t", "window": ["0s", "3s"]},
                  tenants=[{"tenant": "t", "logs": [{"at": 0, "rate": 100}]},
                           {"tenant": "u", "logs": [{"at": 0, "rate": 100}], "points": [{"at": 0, "rate": 100}]}])
    tenants = {None: "t", "t": "t", "u": "u"}
    for workers in (1, 2, 4):
        plans = plan_workers(sc, Target("http://x", {"t": "", "u": ""}), "r", workers, tenants, 0)
        assert all(len({task.tenant for task in p.tasks}) == 1 for p in plans), workers
        assert {task.tenant for p in plans for task in p.tasks} == {"t", "u"}
        assert len({p.index for p in plans}) == len(plans)
        # every service of every tenant is sent exactly once
        for tenant, signal in (("t", "logs"), ("u", "logs"), ("u", "metrics")):
            mine = sorted(i for p in plans for task in p.tasks if (task.tenant, task.signal) == (tenant, signal)
                          for i in task.services)
            assert mine == [0, 1, 2, 3]
    # without isolation, tenants share the processes as before
    plain = scenario(services=4, tenants=sc.model_dump()["tenants"])
    (plan,) = plan_workers(plain, Target("http://x", {"t": "", "u": ""}), "r", 1, tenants, 0)
    assert {task.tenant for task in plan.tasks} == {"t", "u"}


def test_isolation_window_must_lie_within_the_run_and_name_a_tenant_of_the_scenario():
    two = [{"tenant": "t", "logs": [{"at": 0, "rate": 100}]}, {"tenant": "u", "logs": [{"at": 0, "rate": 100}]}]
    with pytest.raises(Exception, match="isolation.window must lie within the run"):
        scenario(isolation={"tenant": "t", "window": ["2s", "9s"]}, tenants=two)
    with pytest.raises(Exception, match="isolation.tenant: 'nope' is not one of the scenario's tenants"):
        scenario(isolation={"tenant": "nope", "window": ["0s", "1s"]}, tenants=two)
    with pytest.raises(Exception, match="isolation needs a second tenant"):
        scenario(isolation={"tenant": "t", "window": ["0s", "1s"]})


def fake_run(latencies: list[float], accepted: int = 100, neighbour_requests: int = 0, run_id: str = "r") -> Live:
    """A finished run of quiet tenant t (and neighbour u) whose every second holds these
    latencies (ms) for t's logs."""
    live = Live(started=0, duration=4)
    live.run_id, live.workers, live.lost_workers, live.tenant_map = run_id, 1, 0, {None: "t", "t": "t", "u": "u"}
    for s in range(4):
        live.timeline.setdefault("t/logs", {})[s] = {"target": accepted, "offered": accepted, "not_sent": 0,
                                                     "accepted": accepted, "rejected": 0, "failed": 0, "retries": 0,
                                                     "requests": len(latencies), "latency_ms": list(latencies)}
        live.timeline.setdefault("u/logs", {})[s] = {"target": 0, "offered": 0, "not_sent": 0, "accepted": 0,
                                                     "rejected": 0, "failed": 0, "retries": 0,
                                                     "requests": neighbour_requests, "latency_ms": []}
    return live


ISO = {"tenant": "t", "window": ["0s", "4s"], "rounds": 2}
TWO = [{"tenant": "t", "logs": [{"at": 0, "rate": 100}]}, {"tenant": "u", "logs": [{"at": 0, "rate": 100}]}]


def test_isolation_judges_the_quiet_tenants_latency_with_an_interval():
    from obskit.loadgen.isolation import compare

    sc = scenario(duration="4s", isolation=ISO, tenants=TWO)
    rng = random.Random(7)
    steady = lambda: [rng.gauss(10, 1) for _ in range(500)]  # noqa: E731
    # The same latencies with and without the flood: within 5%, and the interval says so.
    same = compare([fake_run(steady(), neighbour_requests=5)] * 3, [fake_run(steady(), neighbour_requests=30)] * 3, sc,
                   {"u": {"requests_per_second": 5}})
    assert same["verdict"] == "within" and same["within_tolerance"] is True
    p50 = same["judged"]["latency p50_ms"]
    assert p50["interval"][0] <= p50["change"] <= p50["interval"][1] <= 0.05
    assert same["runs"]["baseline"]["neighbours"]["u"] == {"requests_per_s": 5.0, "times_limit": 1.0}
    assert same["runs"]["flood"]["neighbours"]["u"] == {"requests_per_s": 30.0, "times_limit": 6.0}
    assert same["runs"]["flood"]["latency"]["requests"] == 3 * 4 * 500
    # Every request 50% slower during the flood: NOT within, however it is sampled.
    slow = compare([fake_run(steady())] * 3, [fake_run([x * 1.5 for x in steady()])] * 3, sc)
    assert slow["verdict"] == "NOT within" and slow["judged"]["latency p50_ms"]["interval"][0] > 0.4
    # Only the tail worse (p99 3x): the median alone would have missed it.
    tail = compare([fake_run(steady())] * 3, [fake_run(steady()[:490] + [30.0] * 10)] * 3, sc)
    assert tail["judged"]["latency p50_ms"]["verdict"] == "within"
    assert tail["judged"]["latency p99_ms"]["verdict"] == "NOT within" and tail["verdict"] == "NOT within"
    # Fewer accepted items for the quiet tenant during the flood: NOT within.
    starved = compare([fake_run(steady())] * 3, [fake_run(steady(), accepted=80)] * 3, sc)
    assert starved["judged"]["logs accepted_per_s"] == {"change": -0.2, "verdict": "NOT within"}
    # Faster during the flood is no harm.
    faster = compare([fake_run(steady())] * 3, [fake_run([x * 0.8 for x in steady()])] * 3, sc)
    assert faster["verdict"] == "within"


def test_the_interval_pairs_rounds_so_drift_cancels_but_a_varying_effect_does_not():
    from obskit.loadgen.isolation import compare

    sc = scenario(duration="4s", isolation=ISO, tenants=TWO)
    rng = random.Random(3)
    run_at = lambda mean: fake_run([rng.gauss(mean, 0.5) for _ in range(300)])  # noqa: E731
    # The machine drifts 20% between rounds, the flood costs nothing: the rounds are paired,
    # so the drift cancels and the verdict is within.
    drifting = compare([run_at(9), run_at(11), run_at(10)], [run_at(9), run_at(11), run_at(10)], sc)
    lo, hi = drifting["judged"]["latency p50_ms"]["interval"]
    assert -0.05 < lo <= hi < 0.05 and drifting["judged"]["latency p50_ms"]["verdict"] == "within"
    # The same runs unpaired (the flood's rounds in the other order) look like a +-20% effect.
    crossed = compare([run_at(9), run_at(11), run_at(10)], [run_at(11), run_at(9), run_at(10)], sc)
    lo, hi = crossed["judged"]["latency p50_ms"]["interval"]
    assert lo < -0.05 and hi > 0.05 and crossed["judged"]["latency p50_ms"]["verdict"] == "inconclusive"
    # One round: only the sampling noise within the runs, a narrow interval.
    one = compare([run_at(10)], [run_at(10)], sc.model_copy(update={"isolation": sc.isolation.model_copy(
        update={"rounds": 1})}))
    lo, hi = one["judged"]["latency p50_ms"]["interval"]
    assert hi - lo < 0.03 and one["rounds"] == 1
    # ... which is why one or two rounds give no latency verdict, however narrow the interval.
    assert one["judged"]["latency p50_ms"]["verdict"] == "inconclusive" and one["verdict"] == "inconclusive"
    assert one["too_few_rounds"] is True
    assert "a latency verdict needs isolation.rounds of at least 3" in "\n".join(report_mod.isolation_lines(
        {**one, "measured": True}))
    two = compare([run_at(10)] * 2, [run_at(10)] * 2, sc)
    assert two["verdict"] == "inconclusive" and two["rounds"] == 2


def test_isolation_rounds_alternate_which_run_goes_first():
    from obskit.loadgen.isolation import round_order

    assert [round_order(r) for r in (1, 2, 3, 4)] == [("baseline", "flood"), ("flood", "baseline"),
                                                       ("baseline", "flood"), ("flood", "baseline")]


def test_the_summary_states_the_isolation_verdict_and_its_interval():
    sc = scenario(duration="4s", isolation=ISO, tenants=TWO)
    rng = random.Random(5)
    base = [fake_run([rng.gauss(10, 1) for _ in range(400)], neighbour_requests=5)] * 3
    flood = [fake_run([rng.gauss(10, 1) for _ in range(400)], neighbour_requests=30)] * 3
    rep = report_mod.build(flood[-1], sc, "x", None, {"u": {"requests_per_second": 5, "burst": 10}},
                           baseline=(base, flood))
    text = report_mod.summary(rep)
    assert "isolation: t over 0-4 s of 3 flood runs (u 30.0 requests/s (6.0x its limit))" in text
    assert "(neighbours at their limits: u 5.0 requests/s (1.0x its limit))" in text
    assert re.search(r"latency p99 +[\d.]+ -> [\d.]+ ms \([+-][\d.]+%; 95% interval [+-][\d.]+% to [+-][\d.]+%\)", text)
    assert "-> within 5%" in text
    # a scenario with isolation but no baseline run says it was not measured
    assert report_mod.build(flood[-1], sc, "x", None)["isolation"] == {"measured": False, "reason": "no baseline run"}


def test_without_workers_set_a_scenario_gets_the_processes_its_rates_need_not_one_per_cpu():
    """Each process keeps its own schedule, and at low rates sends a partial batch every
    0.2 s: one process per CPU on a 16-core laptop would turn steady's 15 requests/s into
    160, and run into the gateway's limit of 50."""
    from obskit.loadgen.run import tenant_groups
    from obskit.loadgen.schedule import batches

    def requests_per_s(sc, cpus):
        total = 0
        for loads, count in tenant_groups(sc, None, cpus=cpus):
            for w in range(count):
                share = len([i for i in range(sc.services) if i % count == w]) / sc.services
                for load in loads:
                    for profile, size in ((load.logs, sc.batch_logs), (load.points, sc.batch_points)):
                        total += sum(1 for _ in batches(profile, sc.duration_s, size, share)) if profile else 0
        return total / sc.duration_s

    steady = load_scenario("steady")
    assert [n for _, n in tenant_groups(steady, None, cpus=16)] == [1]
    assert requests_per_s(steady, 16) == pytest.approx(15, abs=0.5)
    assert [n for _, n in tenant_groups(load_scenario("ramp"), None, cpus=16)] == [2]  # 40k realistic records/s
    assert [n for _, n in tenant_groups(load_scenario("ramp"), None, cpus=1)] == [1]  # never more than the CPUs
    nn = load_scenario("noisy-neighbour")
    assert [n for _, n in tenant_groups(nn, None, cpus=16)] == [1, 1]
    # An explicit count is kept (and split between the groups of an isolation scenario).
    assert [n for _, n in tenant_groups(steady, 4, cpus=16)] == [4]
    assert [n for _, n in tenant_groups(nn, 4, cpus=16)] == [2, 2]


def test_a_shorter_duration_keeps_the_isolation_window_in_its_place():
    from obskit.loadgen.scenario import with_duration

    sc = with_duration(load_scenario("noisy-neighbour"), "12s")
    assert sc.duration_s == 12 and sc.isolation.window_s() == (2.0, 12.0)  # 5-30 s of 30 s
    assert with_duration(load_scenario("steady"), "5s").duration_s == 5


def test_partial_success_messages_are_classified_by_cause_not_printed_as_blocks():
    """Mimir's out-of-order answers (one long message each) are one explained line in the
    summary, not blocks of text next to 'rejected 0'."""
    sc = scenario()
    live = Live(started=0, duration=3)
    live.run_id, live.workers, live.lost_workers = "r", 1, 0
    mimir = ("failed pushing to ingester mimir-2: user=apps: the sample has been rejected because another sample with "
             "a more recent timestamp has already been ingested and out-of-order samples are not allowed "
             "(err-mimir-sample-out-of-order). The affected sample has timestamp 2026-01-01T00:00:00Z and is from "
             "series loadgen_value{job=\"x\"}\nsecond line\nthird line")
    bucket = {"target": 100, "offered": 100, "not_sent": 0, "accepted": 100, "rejected": 0, "failed": 0,
              "retries": 0, "requests": 3, "latency_ms": [5.0]}
    live.absorb(0, {"t/metrics": {"totals": {"target": 100, "offered": 100, "accepted": 100, "failed": 0, "retries": 0,
                                             "requests": 3, "not_sent": {}, "rejected": {}, "responses": {"200": 3},
                                             "messages": {mimir: 2, mimir.replace("mimir-2", "mimir-1"): 1},
                                             "bytes_raw": 1, "bytes_sent": 1, "gzip_sample": [0, 0], "lanes": 1},
                                  "seconds": {0: bucket}, "latency_hist": None, "service_hist": None}})
    report = report_mod.build(live, sc, "x", None)
    by_cause = report["totals"]["t/metrics"]["partial_success"]["by_cause"]
    assert set(by_cause) == {"out-of-order samples"} and by_cause["out-of-order samples"]["answers"] == 3
    text = report_mod.summary(report)
    lines = [line for line in text.splitlines() if "partial_success" in line]
    assert len(lines) == 1 and "out-of-order samples: 3 answer(s), 0 record(s) rejected" in lines[0]
    assert "second line" not in text and "err-mimir-sample-out-of-order" not in text


def test_bodies_are_encoded_before_they_are_due_so_latency_measures_the_stack(sink_factory, monkeypatch):
    """Encoding takes 40 ms of a 100 ms interval: with a sender free, every body is made
    before its batch is due, so the time from due to answer holds no encoding."""
    import threading

    sink, target = sink_factory()
    clock = VirtualClock()
    sc = scenario(duration="1s", batch_logs=100, late_after="20ms", max_in_flight=16)  # more lanes than batches
    (plan,) = plan_workers(sc, target, "r", 1, TENANTS, clock.now + 0.2)
    stats = Stats()
    sender = TaskSender(plan, plan.tasks[0], stats, threading.Event(), clock=clock)
    encode = sender._encode
    early: list[float] = []

    def timed_encode(lane, n, due_rel):
        early.append(plan.start_at + due_rel - clock.now)  # how long before its due time
        clock.now += 0.04
        return encode(lane, n, due_rel)

    monkeypatch.setattr(sender, "_encode", timed_encode)
    sender.run()
    assert stats.offered == stats.target == 1000 and not stats.not_sent
    assert len(early) == 10 and min(early) > 0
