"""One sending process. Sending is open-loop: for every (tenant, signal) the schedule
(``schedule.batches``) fixes when each batch is due, and a dispatcher thread hands each
batch, when due, to one of up to ``max_in_flight`` sender lanes (each a thread with its own
keep-alive connection). A slow answer or a retry holds one lane, never the schedule.

Counting never loses an item:

- target = offered + not sent: every scheduled batch is either *offered* (a lane took it
  on time) or *not sent* (it could not even be started within ``late_after`` of when it was
  due: every lane was busy, or the generator itself was behind);
- offered = accepted + rejected + failed: an offered batch ends *accepted* (2xx; minus what
  an OTLP ``partial_success`` rejected), *rejected* (a final non-2xx, by status, or
  ``partial_success``) or *failed* (no answer after the retries).

Both hold per second too: every count is booked to the second in which its batch was due.
Latency is measured from when the batch was due to its final answer, so time spent waiting
for a lane or behind retries is included (no coordinated omission); the service time, from
the first attempt, is kept separately. Totals go into HDR histograms.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import math
import queue as queue_mod
import random
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from obskit.loadgen import wire
from obskit.loadgen.scenario import Profile, Scenario, seconds
from obskit.loadgen.schedule import batches

RETRY_STATUSES = {429, 502, 503, 504}
MAX_BACKOFF_S = 2.0
PARTIAL = "partial_success"  # the key under which partial_success rejections are counted
NOT_SENT_BUSY = "no free sender"
NOT_SENT_LATE = "generator behind"
HIST_MAX_US = 3_600_000_000  # an hour, in microseconds
MAX_MESSAGES = 20  # distinct partial_success messages kept per stream
GZIP_LEVEL = 6  # the level the stated gzip ratio is measured at (gzip's and Go's default)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIST_MAX_US, 3)


@dataclass(frozen=True)
class Target:
    """Where to send: the gateway (TLS, per-tenant write credentials) or a plain sink."""

    base_url: str
    auth: dict[str, str]  # tenant -> Authorization header value
    ca_file: str | None = None
    logs_path: str = "/otlp/v1/logs"
    metrics_path: str = "/otlp/v1/metrics"


@dataclass(frozen=True)
class Task:
    tenant: str
    signal: str  # logs | metrics
    profile: Profile
    share: float  # this worker's fraction of the tenant's rate
    services: tuple[int, ...]  # indexes of the services this worker sends for
    retries: int | None = None  # default: the scenario's
    lanes: int = 1  # this worker's share of the in-flight limit

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.signal}"


@dataclass(frozen=True)
class WorkerPlan:
    index: int
    scenario: Scenario
    target: Target
    run_id: str
    start_at: float  # wall-clock start, shared by every worker
    tasks: tuple[Task, ...]


COUNTS = ("target", "offered", "not_sent", "accepted", "rejected", "failed", "retries", "requests")


def new_bucket() -> dict:
    return {**{k: 0 for k in COUNTS}, "latency_ms": [], "rejected_by": {}}


@dataclass
class Stats:
    """Counts of one task; ``seconds`` and the histograms hold deltas since the last drain."""

    target: int = 0
    offered: int = 0
    accepted: int = 0
    failed: int = 0
    retries: int = 0
    requests: int = 0  # batches offered
    not_sent: dict[str, int] = field(default_factory=dict)  # reason -> items
    rejected: dict[str, int] = field(default_factory=dict)  # status (or partial_success) -> items
    responses: dict[str, int] = field(default_factory=dict)  # every HTTP attempt, by status
    messages: dict[str, int] = field(default_factory=dict)  # partial_success error messages
    bytes_raw: int = 0  # encoded request bodies, offered
    bytes_sent: int = 0  # as sent (after compression, if any)
    gzip_sample: list[int] = field(default_factory=lambda: [0, 0])  # raw, gzipped bytes of sampled bodies
    lanes: int = 0
    seconds: dict[int, dict] = field(default_factory=dict)
    latency: HdrHistogram = field(default_factory=new_histogram)  # from due, microseconds
    service: HdrHistogram = field(default_factory=new_histogram)  # from the first attempt
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bucket(self, sec: int) -> dict:
        b = self.seconds.get(sec)
        if b is None:
            b = self.seconds[sec] = new_bucket()
        return b

    def drain(self) -> dict:
        with self.lock:
            out = {
                "totals": {"target": self.target, "offered": self.offered, "accepted": self.accepted,
                           "failed": self.failed, "retries": self.retries, "requests": self.requests,
                           "not_sent": dict(self.not_sent), "rejected": dict(self.rejected),
                           "responses": dict(self.responses), "messages": dict(self.messages),
                           "bytes_raw": self.bytes_raw, "bytes_sent": self.bytes_sent,
                           "gzip_sample": list(self.gzip_sample), "lanes": self.lanes},
                "seconds": self.seconds,
                "latency_hist": self.latency.encode() if self.latency.get_total_count() else None,
                "service_hist": self.service.encode() if self.service.get_total_count() else None,
            }
            self.seconds = {}
            self.latency.reset()
            self.service.reset()
        return out


class Connection:
    """A keep-alive HTTP(S) connection that reconnects after an error."""

    def __init__(self, target: Target) -> None:
        url = urllib.parse.urlsplit(target.base_url)
        self.https = url.scheme == "https"
        self.host, self.port = url.hostname or "127.0.0.1", url.port or (443 if self.https else 80)
        self.context = None
        if self.https:
            self.context = ssl.create_default_context(cafile=target.ca_file)
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> tuple[int, dict, bytes]:
        if self.conn is None:
            if self.https:
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            self.conn.request("POST", path, body, headers)
            resp = self.conn.getresponse()
            payload = resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, {"retry-after": resp.getheader("Retry-After"),
                                 "content-type": resp.getheader("Content-Type", "")}, payload
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Batch:
    due: float  # wall clock
    sec: int  # the second of the run it was due in
    n: int
    body: bytes


class Lane:
    """One sender: a thread, a connection, and (for metrics) series of its own, so that two
    batches in flight at once never carry points of the same series (Mimir refuses a
    sample older than the newest it has for that series)."""

    def __init__(self, index: int, target: Target, sources: list) -> None:
        self.index = index
        self.conn = Connection(target)
        self.sources = sources
        self.src_i = index * 8  # lanes that share the log streams start at different ones
        self.inbox: queue_mod.SimpleQueue = queue_mod.SimpleQueue()


class Clock:
    """Wall-clock time and waiting, in one place: a test passes a clock of its own (see
    tests/test_load_openloop.py) to make the dispatcher's timing decisions deterministic."""

    def time(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait ``seconds`` or until ``event`` is set; True if it was set."""
        return event.wait(seconds)


class TaskSender:
    """The dispatcher and lanes of one task in one worker."""

    def __init__(self, plan: WorkerPlan, task: Task, stats: Stats, stop: threading.Event,
                 clock: Clock | None = None) -> None:
        sc, target = plan.scenario, plan.target
        self.plan, self.task, self.stats, self.stop = plan, task, stats, stop
        self.clock = clock or Clock()
        rng = random.Random(f"{plan.run_id}/{task.key}/{plan.index}")
        namespace = f"loadgen-{plan.run_id}"
        self.retries = sc.retries if task.retries is None else task.retries
        self.late_after = seconds(sc.late_after)
        self.gzip = sc.compression == "gzip"
        self.headers = {"Content-Type": "application/x-protobuf", "Authorization": target.auth[task.tenant]}
        if self.gzip:
            self.headers["Content-Encoding"] = "gzip"
        lanes = max(1, task.lanes)
        content = sc.log_content
        self.distinct = None if content.variety == "fast" else content.distinct_per_s
        self.fresh_budget, self.fresh_at = 0.0, 0.0
        if task.signal == "logs":
            self.batch_size, self.path = sc.batch_logs, target.logs_path
            streams = [wire.LogStream(f"svc-{i:05d}", namespace, rng, body_bytes=sc.body_bytes, shape=content.shape,
                                      variety=content.variety) for i in task.services]
            groups = [streams] * lanes  # Loki takes a stream's lines in any order: lanes share streams
        else:
            self.batch_size, self.path = sc.batch_points, target.metrics_path
            n = sc.series_per_service
            every = [(i, j) for i in task.services for j in range(n)]
            lanes = min(lanes, len(every))
            groups = []
            for lane in range(lanes):
                mine: dict[int, list[int]] = {}
                for k in range(lane, len(every), lanes):
                    i, j = every[k]
                    mine.setdefault(i, []).append(j)
                groups.append([wire.SeriesSet(f"svc-{i:05d}", namespace, js) for i, js in mine.items()])
        self.lanes = [Lane(k, target, groups[k]) for k in range(lanes)]
        self.free: queue_mod.Queue = queue_mod.Queue()
        for lane in self.lanes:
            self.free.put(lane)
        stats.lanes = lanes
        self.value = 0.0
        self.sampled_sec = -1

    # ---------------------------------------------------------------- dispatching

    def run(self) -> None:
        threads = [threading.Thread(target=self._lane_loop, args=(lane,), daemon=True) for lane in self.lanes]
        for t in threads:
            t.start()
        try:
            self._dispatch()
        finally:
            for lane in self.lanes:
                lane.inbox.put(None)
            for t in threads:
                t.join()
            for lane in self.lanes:
                lane.conn.close()

    def _dispatch(self) -> None:
        """Hand each batch to a free lane when it is due. A batch that cannot start within
        ``late_after`` is not sent, for one of two reasons: every lane was busy (the time
        went waiting for a lane, for this batch or for an earlier one), or the generator
        itself was behind (the time went elsewhere: encoding, a descheduled process). The
        reason is the larger of the two shares of the batch's delay, so a dispatcher that
        is late only because it waited for lanes never blames itself."""
        plan, task, stats, clock = self.plan, self.task, self.stats, self.clock
        duration = plan.scenario.duration_s
        last_sec = max(0, math.ceil(duration) - 1)
        lane_wait_end = -math.inf  # when the dispatcher last stopped waiting for a lane
        for due_rel, n in batches(task.profile, duration, self.batch_size, task.share):
            due = plan.start_at + due_rel
            # Encode ahead: with a lane free before the batch is due, its body is made now,
            # so that latency from due measures the stack, not the generator's encoding.
            lane = body = None
            if due - clock.time() > 0:
                try:
                    lane = self.free.get_nowait()
                except queue_mod.Empty:
                    pass
                else:
                    body = self._encode(lane, n, due_rel)
            wait = due - clock.time()
            if (wait > 0 and clock.wait(self.stop, wait)) or self.stop.is_set():
                if lane is not None:
                    self.free.put(lane)
                return
            # Booked to the second its items were due in: a batch due at exactly 1.0 s holds
            # items due before it, in second 0.
            sec = min(max(0, math.ceil(due_rel) - 1), last_sec)
            with stats.lock:
                stats.target += n
                stats.bucket(sec)["target"] += n
            reason = NOT_SENT_LATE
            now = clock.time()
            if now - due > self.late_after:
                if lane is not None:  # made ready in time, then the generator itself stalled
                    self.free.put(lane)
                    lane = None
                elif max(0.0, lane_wait_end - due) >= now - max(due, lane_wait_end):
                    reason = NOT_SENT_BUSY  # late because it waited for a lane, not because of itself
            elif lane is None:
                try:
                    lane = self.free.get(timeout=max(0.0, due + self.late_after - now))
                except queue_mod.Empty:
                    reason = NOT_SENT_BUSY
                lane_wait_end = clock.time()
            if lane is None:
                with stats.lock:
                    stats.not_sent[reason] = stats.not_sent.get(reason, 0) + n
                    stats.bucket(sec)["not_sent"] += n
                continue
            if body is None:
                body = self._encode(lane, n, due_rel)
            with stats.lock:
                stats.offered += n
                stats.requests += 1
                stats.bytes_raw += len(body)
                b = stats.bucket(sec)
                b["offered"] += n
                b["requests"] += 1
            lane.inbox.put(Batch(due, sec, n, body))

    def _encode(self, lane: Lane, n: int, due_rel: float) -> bytes:
        sources = lane.sources
        per_source = max(1, self.batch_size // max(1, min(len(sources), 8)))
        fresh = None
        if self.task.signal == "logs" and self.distinct is not None:
            self.fresh_budget = min(self.fresh_budget + (due_rel - self.fresh_at) * self.distinct * self.task.share,
                                    max(self.batch_size, self.distinct * self.task.share))
            self.fresh_at = due_rel
            fresh = min(n, int(self.fresh_budget))
            self.fresh_budget -= fresh
        parts, left = [], n
        now_ns = time.time_ns()
        while left > 0:
            src = sources[lane.src_i % len(sources)]
            lane.src_i += 1
            k = min(left, per_source)
            if self.task.signal == "logs":
                if fresh is None:
                    parts.append(src.resource_logs(k, now_ns))
                else:
                    f = min(k, fresh)
                    fresh -= f
                    parts.append(src.resource_logs(k, now_ns, f))
            else:
                self.value += 1
                parts.append(src.resource_metrics(k, now_ns // 1_000_000, self.value))
            left -= k
        return b"".join(parts)

    # ---------------------------------------------------------------- sending

    def _lane_loop(self, lane: Lane) -> None:
        while True:
            batch = lane.inbox.get()
            if batch is None:
                return
            try:
                self._deliver(lane, batch)
            finally:
                self.free.put(lane)

    def _deliver(self, lane: Lane, batch: Batch) -> None:
        stats, n, sec = self.stats, batch.n, batch.sec
        body = batch.body
        sample = self.sampled_sec != sec  # one body per second is compressed to state the gzip ratio
        if sample:
            self.sampled_sec = sec
        if self.gzip:
            body = gzip.compress(body, compresslevel=1)
        packed = len(gzip.compress(batch.body, compresslevel=GZIP_LEVEL)) if sample else 0
        with stats.lock:
            stats.bytes_sent += len(body)
            if sample:
                stats.gzip_sample[0] += len(batch.body)
                stats.gzip_sample[1] += packed
        started = self.clock.time()
        attempt = 0
        while True:
            try:
                status, info, payload = lane.conn.post(self.path, body, self.headers)
                code = str(status)
            except (OSError, http.client.HTTPException, socket.timeout):
                status, info, payload, code = 0, {}, b"", "error"
            with stats.lock:
                stats.responses[code] = stats.responses.get(code, 0) + 1
            if 200 <= status < 300:
                rejected, message = wire.partial_success(payload, info.get("content-type", ""))
                rejected = max(0, min(n, rejected))
                self._finish(batch, started, accepted=n - rejected, rejected={PARTIAL: rejected} if rejected else {},
                             message=message if (rejected or message) else None)
                return
            retryable = status in RETRY_STATUSES or status == 0
            if retryable and attempt < self.retries and not self.stop.is_set():
                attempt += 1
                with stats.lock:
                    stats.retries += 1
                    stats.bucket(sec)["retries"] += 1
                wait = min(MAX_BACKOFF_S, 0.05 * 2 ** attempt)
                try:
                    wait = min(MAX_BACKOFF_S, float(info.get("retry-after") or wait))
                except ValueError:
                    pass
                if not self.stop.wait(wait):
                    continue
            if status == 0:
                self._finish(batch, started, failed=n)
            else:
                self._finish(batch, started, rejected={code: n})
            return

    def _finish(self, batch: Batch, started: float, accepted: int = 0, rejected: dict | None = None, failed: int = 0,
                message: str | None = None) -> None:
        now = self.clock.time()
        latency_us = max(1, int((now - batch.due) * 1e6))
        service_us = max(1, int((now - started) * 1e6))
        stats = self.stats
        with stats.lock:
            b = stats.bucket(batch.sec)
            stats.accepted += accepted
            b["accepted"] += accepted
            for status, k in (rejected or {}).items():
                stats.rejected[status] = stats.rejected.get(status, 0) + k
                b["rejected"] += k
                b["rejected_by"][status] = b["rejected_by"].get(status, 0) + k
            stats.failed += failed
            b["failed"] += failed
            b["latency_ms"].append(round(latency_us / 1000, 3))
            stats.latency.record_value(min(latency_us, HIST_MAX_US))
            stats.service.record_value(min(service_us, HIST_MAX_US))
            if message is not None:
                message = message[:300]
                if message in stats.messages or len(stats.messages) < MAX_MESSAGES:
                    stats.messages[message] = stats.messages.get(message, 0) + 1


def work(plan: WorkerPlan, queue, stop_event=None, start=None) -> None:
    """Run one worker's tasks; report to ``queue`` every half second and once at the end.

    With ``start`` (a shared double), the worker says "ready" once it is set up and waits
    for the coordinator to write the common start time there, so that a slow process start
    never makes the first batches late."""
    stop = threading.Event()
    stats = {task.key: Stats() for task in plan.tasks}
    senders = [TaskSender(plan, t, stats[t.key], stop) for t in plan.tasks]
    if start is not None:
        queue.put(("ready", plan.index, None))
        while start.value == 0 and not (stop_event is not None and stop_event.is_set()):
            time.sleep(0.005)
        plan = dataclasses.replace(plan, start_at=start.value)
        for sender in senders:
            sender.plan = plan
    while time.time() < plan.start_at:
        time.sleep(min(0.01, max(0.0, plan.start_at - time.time())))
    threads = [threading.Thread(target=s.run, daemon=True) for s in senders]
    cpu0 = time.process_time()
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.5)
            if stop_event is not None and stop_event.is_set():
                stop.set()
            queue.put(("stats", plan.index, {k: s.drain() for k, s in stats.items()}))
    finally:
        stop.set()
        for t in threads:
            t.join()
        queue.put(("done", plan.index, {"stats": {k: s.drain() for k, s in stats.items()},
                                         "cpu_seconds": time.process_time() - cpu0}))
