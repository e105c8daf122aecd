"""The coordinator: plans the workers, starts them in separate processes, aggregates what
they report into a per-second timeline, samples freshness during the run, and counts what
arrived at the backend afterwards."""

from __future__ import annotations

import math
import multiprocessing
import os
import queue as queue_mod
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from obskit.loadgen.scenario import Scenario, seconds
from obskit.loadgen.worker import Target, Task, WorkerPlan, work

READY_TIMEOUT_S = 120.0  # for every worker process to start and set up
START_DELAY_S = 0.3  # from the last worker being ready to the start of the schedule


# What one sending process keeps up with comfortably, per second of peak rate (about half of
# what load/bench/results/generator.md measured per CPU second: 84k realistic log records,
# 990k fast ones, 1.2M data points).
CAPACITY = {"realistic": 40_000, "fast": 400_000, "points": 500_000}


def needed_workers(loads, scenario: Scenario) -> int:
    """How many sending processes a set of tenants' peak rates needs. More than that is not
    free: each process keeps its own schedule, and at low rates each sends a partial batch
    every 0.2 s, so extra processes send more, smaller requests (16 processes would turn
    `steady`'s 15 requests/s into 160 and run into the gateway's limit)."""
    need = 0.0
    for load in loads:
        need += max((p.rate for p in load.logs), default=0) / CAPACITY[scenario.log_content.variety]
        need += max((p.rate for p in load.points), default=0) / CAPACITY["points"]
    return max(1, math.ceil(need))


def tenant_groups(scenario: Scenario, workers: int | None, cpus: int | None = None) -> list[tuple[list, int]]:
    """Which tenants share sending processes, and how many processes each group gets: as
    many as ``workers`` says, else as many as its peak rates need (at most the CPU count).

    A scenario that measures isolation gives its quiet tenant processes of its own: a flood
    sent from the same process would hold the interpreter lock while the quiet tenant's
    batches wait, and the generator would measure itself instead of the gateway."""
    cpus = cpus or os.cpu_count() or 1
    iso = scenario.isolation
    if iso is None or len(scenario.tenants) == 1:
        groups = [list(scenario.tenants)]
    else:
        groups = [[t for t in scenario.tenants if t.tenant == iso.tenant],
                  [t for t in scenario.tenants if t.tenant != iso.tenant]]
    if workers is None:
        return [(g, min(cpus, needed_workers(g, scenario))) for g in groups]
    if len(groups) == 1:
        return [(groups[0], workers)]
    mine = max(1, workers // 2)
    return [(groups[0], mine), (groups[1], max(1, workers - mine))]


def plan_workers(scenario: Scenario, target: Target, run_id: str, workers: int | None,
                 tenants: dict[str | None, str], start_at: float) -> list[WorkerPlan]:
    """Split every tenant's services over its group's workers; each takes its share of the
    rate and of the in-flight limit (at least one sender each)."""
    plans = []
    index = 0
    for loads, count in tenant_groups(scenario, workers):
        busy = min(count, scenario.services)  # workers that get services
        for w in range(count):
            tasks = []
            mine = tuple(i for i in range(scenario.services) if i % count == w)
            share = len(mine) / scenario.services
            for load in loads:
                tenant = tenants[load.tenant]
                limit = load.max_in_flight or scenario.max_in_flight
                lanes = max(1, limit // busy + (1 if w < limit % busy else 0))
                for signal, profile in (("logs", load.logs), ("metrics", load.points)):
                    if profile and mine and any(p.rate > 0 for p in profile):
                        tasks.append(Task(tenant, signal, tuple(profile), share, mine, load.retries, lanes))
            if tasks:
                plans.append(WorkerPlan(index, scenario, target, run_id, start_at, tuple(tasks)))
                index += 1
    return plans


SUMMED = ("target", "offered", "accepted", "failed", "retries", "requests", "bytes_raw", "bytes_sent", "lanes")
BY_NAME = ("not_sent", "rejected", "responses", "messages")


@dataclass
class Live:
    """What the coordinator knows so far; the progress line reads it."""

    started: float
    duration: float
    label: str = ""  # what this run is, for the progress line (e.g. the baseline run)
    totals: dict[str, dict] = field(default_factory=dict)  # key -> latest totals, summed over workers
    per_worker: dict[tuple[int, str], dict] = field(default_factory=dict)
    timeline: dict[str, dict[int, dict]] = field(default_factory=dict)
    latency: dict[str, object] = field(default_factory=dict)  # key -> HDR histogram (from due, us)
    service: dict[str, object] = field(default_factory=dict)  # key -> HDR histogram (from first attempt)
    freshness: dict[str, dict[str, list[dict]]] = field(default_factory=dict)  # tenant -> signal -> samples
    cpu_seconds: dict[int, float] = field(default_factory=dict)

    def absorb(self, worker: int, payload: dict) -> None:
        from hdrh.histogram import HdrHistogram

        from obskit.loadgen.worker import COUNTS, new_bucket, new_histogram

        for key, snap in payload.items():
            self.per_worker[(worker, key)] = snap["totals"]
            line = self.timeline.setdefault(key, {})
            for sec, delta in snap["seconds"].items():
                b = line.setdefault(int(sec), new_bucket())
                for k in COUNTS:
                    b[k] += delta[k]
                b["latency_ms"].extend(delta["latency_ms"])
                for cause, n in delta.get("rejected_by", {}).items():
                    b["rejected_by"][cause] = b["rejected_by"].get(cause, 0) + n
            for name, into in (("latency_hist", self.latency), ("service_hist", self.service)):
                if snap.get(name):
                    hist = into.get(key)
                    if hist is None:
                        hist = into[key] = new_histogram()
                    hist.add(HdrHistogram.decode(snap[name]))
        self.totals = {}
        for (_, key), t in self.per_worker.items():
            agg = self.totals.setdefault(key, {**{k: 0 for k in SUMMED}, **{k: {} for k in BY_NAME},
                                               "gzip_sample": [0, 0]})
            for k in SUMMED:
                agg[k] += t[k]
            for k in BY_NAME:
                for name, n in t[k].items():
                    agg[k][name] = agg[k].get(name, 0) + n
            agg["gzip_sample"] = [a + b for a, b in zip(agg["gzip_sample"], t["gzip_sample"])]

    def rate(self, key: str, window: int = 3, what: str = "accepted") -> float:
        """Items per second over the last complete seconds."""
        line = self.timeline.get(key, {})
        now = int(time.time() - self.started)
        secs = [s for s in range(now - window, now) if s >= 0]
        return sum(line.get(s, {}).get(what, 0) for s in secs) / max(1, len(secs))


def _probe_freshness(probes, tenant: str, live: Live, stop: threading.Event, every: float) -> None:
    """From the start and then every ``every`` seconds, send a marker log line and a marker
    sample as ``tenant``, and time how long each takes to become queryable (in threads, so
    probes overlap a slow backend). A probe that fails or never shows is recorded too."""
    samples = live.freshness.setdefault(tenant, {"logs": [], "metrics": []})
    from obskit.verify import metric_name, push_log, push_metric, query_logs, query_metrics

    def one(signal: str) -> None:
        marker = uuid.uuid4().hex
        sent_at = time.time()
        try:
            if signal == "logs":
                push_log(probes, tenant, marker)
                found = lambda: bool(query_logs(probes, tenant, f'{{service_name="obskit-verify"}} |= "{marker}"',
                                                since_seconds=600))
            else:
                push_metric(probes, tenant, marker)
                found = lambda: bool(query_metrics(probes, tenant, f'{metric_name(probes)}{{marker="{marker}"}}'))
            deadline = sent_at + 120
            while time.time() < deadline:
                if found():
                    samples[signal].append({"t": round(sent_at - live.started, 2),
                                            "seconds": round(time.time() - sent_at, 3)})
                    return
                time.sleep(0.2)
            samples[signal].append({"t": round(sent_at - live.started, 2), "seconds": None,
                                    "error": "not visible after 120 s"})
        except Exception as exc:  # noqa: BLE001 - a failed probe is a data point, not a crash
            samples[signal].append({"t": round(sent_at - live.started, 2), "seconds": None, "error": str(exc)[:200]})

    threads = []
    stop.wait(max(0.0, live.started + 0.5 - time.time()))  # the first probe half a second in
    while not stop.is_set():
        for signal in ("logs", "metrics"):
            t = threading.Thread(target=one, args=(signal,), daemon=True)
            t.start()
            threads.append(t)
        if stop.wait(every) or time.time() > live.started + live.duration:
            break
    for t in threads:
        t.join(timeout=130)


def run(
    scenario: Scenario,
    target: Target,
    *,
    tenants: dict[str | None, str],
    workers: int | None = None,
    run_id: str | None = None,
    probes=None,
    on_tick: Callable[[Live], None] | None = None,
    stop_event: threading.Event | None = None,
    label: str = "",
) -> Live:
    """Run a scenario against a target. ``tenants`` maps each scenario tenant (None for the
    default) to a real tenant name; ``probes`` (verify Endpoints) enables freshness probes."""
    run_id = run_id or uuid.uuid4().hex[:10]
    workers = workers or scenario.workers  # None: as many as the rates need
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    stop_mp = ctx.Event()
    start = ctx.Value("d", 0.0)
    plans = plan_workers(scenario, target, run_id, workers, tenants, 0.0)
    procs = [ctx.Process(target=work, args=(plan, queue, stop_mp, start), daemon=True) for plan in plans]
    for p in procs:
        p.start()
    # Every worker set up (imports, content pools) before the clock starts: the schedule
    # must not begin while a process is still starting.
    ready: set[int] = set()
    deadline = time.time() + READY_TIMEOUT_S
    while len(ready) < len(plans) and time.time() < deadline:
        try:
            kind, index, _ = queue.get(timeout=0.25)
            if kind == "ready":
                ready.add(index)
        except queue_mod.Empty:
            if not any(p.is_alive() for p in procs):
                break
    start_at = time.time() + START_DELAY_S
    start.value = start_at
    live = Live(started=start_at, duration=scenario.duration_s, label=label)
    probe_stop = threading.Event()
    probe_threads = []
    if probes is not None:
        every = seconds(scenario.freshness_every)
        for tenant in dict.fromkeys(tenants[t.tenant] for t in scenario.tenants):
            th = threading.Thread(target=_probe_freshness, args=(probes, tenant, live, probe_stop, every), daemon=True)
            th.start()
            probe_threads.append(th)
    done: set[int] = set()
    try:
        while len(done) < len(plans):
            if stop_event is not None and stop_event.is_set():
                stop_mp.set()
            try:
                kind, index, payload = queue.get(timeout=0.25)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs) and queue.empty():
                    break  # a worker died without reporting
                if on_tick:
                    on_tick(live)
                continue
            if kind == "stats":
                live.absorb(index, payload)
            else:
                live.absorb(index, payload["stats"])
                live.cpu_seconds[index] = payload["cpu_seconds"]
                done.add(index)
            if on_tick:
                on_tick(live)
    finally:
        stop_mp.set()
        probe_stop.set()
        for th in probe_threads:
            th.join(timeout=130)
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    live.run_id = run_id  # type: ignore[attr-defined]
    live.tenant_map = dict(tenants)  # type: ignore[attr-defined]
    live.workers = len(plans)  # type: ignore[attr-defined]
    live.lost_workers = len(plans) - len(done)  # type: ignore[attr-defined]
    live.planned = planned_targets(plans)  # type: ignore[attr-defined]
    return live


def planned_targets(plans: list[WorkerPlan]) -> dict[str, int]:
    """What the schedule asks of every stream, whatever the workers reported: a worker that
    dies mid-run cannot make its share of the target vanish from the report."""
    from obskit.loadgen.schedule import batches

    out: dict[str, int] = {}
    for plan in plans:
        sc = plan.scenario
        for task in plan.tasks:
            size = sc.batch_logs if task.signal == "logs" else sc.batch_points
            out[task.key] = out.get(task.key, 0) + sum(n for _, n in batches(task.profile, sc.duration_s, size,
                                                                               task.share))
    return out
