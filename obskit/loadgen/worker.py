"""One sending process: a thread per (tenant, signal), each with its own keep-alive
connection, paced to its share of the scenario's rate profile.

Counting never loses an item: every batch is *offered* once, then ends *accepted* (2xx),
*rejected* (a final non-2xx, by status) or *failed* (no answer after the retries), so
offered = accepted + rejected + failed. Every HTTP attempt is counted by status, retries
separately; latency is measured per attempt.
"""

from __future__ import annotations

import gzip
import http.client
import random
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from obskit.loadgen import wire
from obskit.loadgen.scenario import Profile, Scenario, items_until

RETRY_STATUSES = {429, 502, 503, 504}
MAX_BACKOFF_S = 2.0


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


@dataclass
class Stats:
    """Counts of one task; ``seconds`` holds per-second deltas since the last drain."""

    offered: int = 0
    accepted: int = 0
    failed: int = 0
    retries: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    responses: dict[str, int] = field(default_factory=dict)
    seconds: dict[int, dict] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bucket(self, sec: int) -> dict:
        b = self.seconds.get(sec)
        if b is None:
            b = self.seconds[sec] = {"offered": 0, "accepted": 0, "rejected": 0, "failed": 0, "latency_ms": []}
        return b

    def drain(self) -> dict:
        with self.lock:
            out = {
                "totals": {"offered": self.offered, "accepted": self.accepted, "failed": self.failed,
                           "retries": self.retries, "rejected": dict(self.rejected), "responses": dict(self.responses)},
                "seconds": self.seconds,
            }
            self.seconds = {}
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

    def post(self, path: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> tuple[int, dict]:
        if self.conn is None:
            if self.https:
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            self.conn.request("POST", path, body, headers)
            resp = self.conn.getresponse()
            resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, {"retry-after": resp.getheader("Retry-After")}
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _sender(plan: WorkerPlan, task: Task, stats: Stats, stop: threading.Event) -> None:
    sc, target = plan.scenario, plan.target
    rng = random.Random(f"{plan.run_id}/{task.key}/{plan.index}")
    namespace = f"loadgen-{plan.run_id}"
    if task.signal == "logs":
        sources = [wire.LogStream(f"svc-{i:05d}", namespace, rng, body_bytes=sc.body_bytes) for i in task.services]
        batch_size, path = sc.batch_logs, target.logs_path
    else:
        n = sc.series_per_service
        sources = [wire.SeriesSet(f"svc-{i:05d}", namespace, range(n)) for i in task.services]
        batch_size, path = sc.batch_points, target.metrics_path
    if not sources:
        return
    headers = {"Content-Type": "application/x-protobuf", "Authorization": target.auth[task.tenant]}
    if sc.compression == "gzip":
        headers["Content-Encoding"] = "gzip"
    conn = Connection(target)
    end = plan.start_at + sc.duration_s
    sent, src_i, last_send = 0, 0, plan.start_at
    per_source = max(1, batch_size // max(1, min(len(sources), 8)))
    value = 0.0
    while not stop.is_set():
        now = time.time()
        if now >= end:
            break
        due = int(items_until(task.profile, now - plan.start_at) * task.share) - sent
        if due < batch_size and not (due > 0 and now - last_send >= 0.2):
            time.sleep(0.002 if due > 0 else 0.01)
            continue
        n = min(batch_size, due)
        # Spread the batch over a few services (streams / series sets), round robin.
        parts, left = [], n
        now_ns = time.time_ns()
        while left > 0:
            src = sources[src_i % len(sources)]
            src_i += 1
            k = min(left, per_source)
            if task.signal == "logs":
                parts.append(src.resource_logs(k, now_ns))
            else:
                value += 1
                parts.append(src.resource_metrics(k, now_ns // 1_000_000, value))
            left -= k
        body = b"".join(parts)
        if sc.compression == "gzip":
            body = gzip.compress(body, compresslevel=1)
        sent += n
        last_send = now
        _deliver(conn, path, body, headers, n, sc.retries, plan.start_at, stats, stop)
    conn.close()


def _deliver(conn: Connection, path: str, body: bytes, headers: dict, n: int, retries: int,
             start_at: float, stats: Stats, stop: threading.Event) -> None:
    with stats.lock:
        stats.offered += n
        stats.bucket(int(time.time() - start_at))["offered"] += n
    attempt = 0
    while True:
        t0 = time.perf_counter()
        try:
            status, info = conn.post(path, body, headers)
            code = str(status)
        except (OSError, http.client.HTTPException, socket.timeout):
            status, info, code = 0, {}, "error"
        elapsed_ms = (time.perf_counter() - t0) * 1000
        sec = int(time.time() - start_at)
        with stats.lock:
            stats.responses[code] = stats.responses.get(code, 0) + 1
            stats.bucket(sec)["latency_ms"].append(round(elapsed_ms, 3))
        if 200 <= status < 300:
            with stats.lock:
                stats.accepted += n
                stats.bucket(sec)["accepted"] += n
            return
        retryable = status in RETRY_STATUSES or status == 0
        if retryable and attempt < retries and not stop.is_set():
            attempt += 1
            with stats.lock:
                stats.retries += 1
            wait = min(MAX_BACKOFF_S, 0.05 * 2 ** attempt)
            try:
                wait = min(MAX_BACKOFF_S, float(info.get("retry-after") or wait))
            except ValueError:
                pass
            time.sleep(wait)
            continue
        with stats.lock:
            if status == 0:
                stats.failed += n
                stats.bucket(sec)["failed"] += n
            else:
                stats.rejected[code] = stats.rejected.get(code, 0) + n
                stats.bucket(sec)["rejected"] += n
        return


def work(plan: WorkerPlan, queue, stop_event=None) -> None:
    """Run one worker's tasks; report to ``queue`` every half second and once at the end."""
    stop = threading.Event()
    stats = {task.key: Stats() for task in plan.tasks}
    while time.time() < plan.start_at:
        time.sleep(min(0.01, plan.start_at - time.time()))
    threads = [threading.Thread(target=_sender, args=(plan, t, stats[t.key], stop), daemon=True) for t in plan.tasks]
    for t in threads:
        t.start()
    cpu0 = time.process_time()
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
