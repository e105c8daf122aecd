"""A deploy replaces Loki the way ECS does: start the new task, then stop the old one (it
flushes to the object store on the way out), then its disk is gone. Real Loki on the
process bindings, S3 on moto. Writes may be refused only while the old ingester shuts
down, and every accepted line must become queryable from the new Loki; the test
measures how long after the old one stopped the last of them became visible, and how
long writes were refused (both recorded in terraform/DESIGN.md).

Mimir is replaced the same way, one replica of three, on real mimir with the rendered
config and the process bindings, in the order the ECS services' deployment settings give
(read from the rendered Terraform inputs): a sample is pushed every 100 ms and queried
throughout; no sample accepted with a 2xx may be lost, and every one must come back from
the queries afterwards. The refused pushes and the samples missing from queries during the
replacement are measured and printed (recorded in load/bench/results/mimir_rolling.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest
import requests

from obskit import loopback
from obskit.render import render, write_environment
from obskit.spec.load import load_spec

from conftest import require_tool
from support import Proc, http_ok, wait_until

pytestmark = pytest.mark.binary

TENANT = "apps"
JOB = "rolling-replacement"


def _loki(plan, name: str, env: dict, log_dir) -> Proc:
    config = plan.config("loki", "loki.yaml")
    # Two Lokis on one host need two ring identities; on ECS each task's host name is its own.
    return Proc(name, ["loki", f"-config.file={config}", "-config.expand-env=true", "-target=all",
                       f"-common.storage.ring.instance-id={name}"], env, log_dir)


def _ready(base: str) -> bool:
    if not http_ok(f"{base}/ready"):
        return False
    return requests.get(f"{base}/loki/api/v1/labels", headers={"X-Scope-OrgID": TENANT}, timeout=2).status_code == 200


class Writer(threading.Thread):
    """One line every 100 ms to whichever Loki is current (what the gateway's re-resolving
    upstream does when ECS swaps the task), counting what was accepted and what was not."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.accepted: list[int] = []
        self.refused: list[tuple[int, float, int, str]] = []  # (seq, when, status, answer)
        self.stop = threading.Event()

    def run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            seq += 1
            body = {"streams": [{"stream": {"job": JOB}, "values": [[str(time.time_ns()), f"line {seq}"]]}]}
            sent = time.monotonic()
            try:
                r = requests.post(f"{self.base}/loki/api/v1/push", data=json.dumps(body), timeout=5,
                                  headers={"Content-Type": "application/json", "X-Scope-OrgID": TENANT})
                if r.status_code == 204:
                    self.accepted.append(seq)
                else:
                    self.refused.append((seq, sent, r.status_code, r.text.strip()[:120]))
            except requests.RequestException as exc:
                self.refused.append((seq, sent, 0, str(exc)[:120]))
            self.stop.wait(0.1)


def _visible(base: str) -> set[int]:
    now = time.time_ns()
    r = requests.get(f"{base}/loki/api/v1/query_range", headers={"X-Scope-OrgID": TENANT}, timeout=10, params={
        "query": f'{{job="{JOB}"}}', "start": now - 3600 * 10**9, "end": now, "limit": 5000})
    r.raise_for_status()
    return {int(v[1].split()[1]) for stream in r.json()["data"]["result"] for v in stream["values"]}


def test_loki_replaced_as_ecs_does_loses_nothing_and_the_gap_is_measured(tmp_path, moto_s3):
    require_tool("loki", "build Loki 3.7 to run the rolling replacement")
    resolved = load_spec(None, environ={}, use_default_file=False)
    write_environment(render(resolved, "local"), tmp_path / "env")
    plans = {name: loopback.plan(resolved.spec, tmp_path / "env", tmp_path / name, s3_endpoint=moto_s3["endpoint"],
                                 s3_access_key=moto_s3["access_key"], s3_secret_key=moto_s3["secret_key"])
             for name in ("loki-old", "loki-new")}
    old_plan, new_plan = plans["loki-old"], plans["loki-new"]
    flush = {"LOKI_FLUSH_ON_SHUTDOWN": "true"}  # as the AWS bindings say: task storage dies with the task
    old_env = {**old_plan.env["loki"], **flush}
    new_env = {**new_plan.env["loki"], **flush,
               "LOKI_MEMBERLIST_JOIN": f"127.0.0.1:{old_plan.ports['loki']['memberlist']}"}
    old = _loki(old_plan, "loki-old", old_env, tmp_path).start()
    new: Proc | None = None
    writer = None
    try:
        old_base, new_base = old_plan.url("loki"), new_plan.url("loki")
        wait_until("the old Loki answers queries", lambda: _ready(old_base), 120, [old])
        writer = Writer(old_base)
        writer.start()
        time.sleep(3)
        new = _loki(new_plan, "loki-new", new_env, tmp_path).start()
        wait_until("the new Loki answers queries", lambda: _ready(new_base), 120, [old, new])
        time.sleep(2)
        writer.base = new_base  # the gateway now resolves the name to the new task
        time.sleep(1)
        stopping = time.monotonic()
        old.stop()  # SIGTERM: flush to S3, leave the ring
        stopped = time.monotonic()
        shutil.rmtree(old_env["LOKI_DATA_DIR"], ignore_errors=True)  # the task's storage is gone
        time.sleep(3)
        writer.stop.set()
        writer.join(timeout=10)
        accepted = set(writer.accepted)
        assert len(accepted) > 50
        # With one replica, a stream the old ingester owns is refused ("Ingester is shutting
        # down", 500) until the ring's gossip says it left: only while it stops, and briefly.
        outside = [r for r in writer.refused if not stopping - 0.5 <= r[1] <= stopped + 5]
        assert not outside, f"writes refused outside the old Loki's shutdown: {outside[:5]}"
        refused_window = (max(r[1] for r in writer.refused) - min(r[1] for r in writer.refused) + 0.1
                          if writer.refused else 0.0)
        missing = accepted
        deadline = stopped + 420
        while time.monotonic() < deadline:
            missing = accepted - _visible(new_base)
            if not missing:
                break
            assert new.alive(), new.tail()
            time.sleep(1)
        gap = time.monotonic() - stopped
        print(f"\nLoki replacement: {len(accepted)} lines accepted, {len(writer.refused)} refused within "
              f"{refused_window:.1f} s of the old task's shutdown ({stopped - stopping:.1f} s); the last accepted line "
              f"became queryable {gap:.1f} s after it stopped; refusals: {[r[2:] for r in writer.refused][:3]}")
        assert not missing, (f"{len(missing)} of {len(accepted)} accepted lines still invisible {gap:.0f} s after "
                             f"the old Loki stopped (first: {sorted(missing)[:5]})")
    finally:
        if writer is not None:
            writer.stop.set()
        for proc in (new, old):
            if proc is not None:
                proc.stop()


# --------------------------------------------------------------------------- Mimir

METRIC = "obskit_rolling_seq"


def _mimir(name: str, config, env: dict, log_dir) -> Proc:
    # As the process runtime starts a replica (the component's container command).
    return Proc(name, ["mimir", f"-config.file={config}", "-config.expand-env=true", "-target=all"], env, log_dir)


def _stop(proc: Proc, timeout: float = 120) -> None:
    """SIGTERM and wait as long as ECS's stopTimeout (120 s): the flush must not be cut short."""
    if proc.proc is None or proc.proc.poll() is not None:
        return
    os.killpg(proc.proc.pid, signal.SIGTERM)
    try:
        proc.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait()


def _mimir_ready(base: str) -> bool:
    return http_ok(f"{base}/ready")


def _otlp(metric: str, seq: int) -> bytes:
    """One gauge sample (value = its sequence number) as OTLP/JSON."""
    point = {"timeUnixNano": str(time.time_ns()), "asDouble": float(seq)}
    return json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": JOB}}]},
        "scopeMetrics": [{"metrics": [{"name": metric, "gauge": {"dataPoints": [point]}}]}]}]}).encode()


def _mimir_visible(base: str, metric: str) -> set[int]:
    r = requests.get(f"{base}/prometheus/api/v1/query", headers={"X-Scope-OrgID": TENANT}, timeout=10,
                     params={"query": f"{metric}[2h]"})
    r.raise_for_status()
    return {int(float(v[1])) for series in r.json()["data"]["result"] for v in series["values"]}


class MimirTraffic(threading.Thread):
    """A sample every 100 ms to the replicas in turn (the gateway's round robin), and after
    each push a query to the next replica in turn; records pushes refused and samples a
    query missed that had been accepted before it was sent."""

    def __init__(self, bases: list[str]) -> None:
        super().__init__(daemon=True)
        # Its own series: the S3 API outlives a test, and blocks of an earlier one stay in it.
        self.metric = f"{METRIC}_{time.time_ns()}"
        self.bases = list(bases)
        self.accepted: list[tuple[int, float]] = []  # (seq, when)
        self.refused: list[tuple[int, float, int, str]] = []
        self.queries: list[tuple[float, int, int]] = []  # (when, accepted before, missing); missing -1: failed
        self.query_errors: list[tuple[float, int, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            seq += 1
            bases = list(self.bases)
            sent = time.monotonic()
            if not bases:  # no task behind the name: the gateway answers 502
                self.refused.append((seq, sent, 502, "no replica"))
                self.stop.wait(0.1)
                continue
            try:
                r = requests.post(f"{bases[seq % len(bases)]}/otlp/v1/metrics", data=_otlp(self.metric, seq), timeout=5,
                                  headers={"Content-Type": "application/json", "X-Scope-OrgID": TENANT})
                if 200 <= r.status_code < 300:
                    self.accepted.append((seq, sent))
                else:
                    self.refused.append((seq, sent, r.status_code, r.text.strip()[:160]))
            except requests.RequestException as exc:
                self.refused.append((seq, sent, 0, str(exc)[:160]))
            before = {s for s, _ in self.accepted}
            asked = time.monotonic()
            try:
                missing = len(before - _mimir_visible(bases[(seq + 1) % len(bases)], self.metric))
                self.queries.append((asked, len(before), missing))
            except (requests.RequestException, ValueError) as exc:
                code = getattr(getattr(exc, "response", None), "status_code", 0) or 0
                self.query_errors.append((asked, code, str(exc)[:160]))
            self.stop.wait(0.1)


def _window(times: list[float]) -> float:
    return max(times) - min(times) if times else 0.0


def mimir_replacement(tmp_path, s3: dict, order: str, replaced: int = 1, wipe: bool = True, flush: bool = True,
                      settle: float = 10, edit=None, deadline: float = 420) -> dict:
    """Replace the first ``replaced`` Mimir replicas of three as an ECS deployment does (a
    config change replaces every replica's service at once). ``order``: "start-first"
    (deployment 100/200: the new task starts, the writer moves, the old one stops) or
    "stop-first" (0/100: the old task stops, then the new one starts). Each new task has
    its service's ring id, new ports and an empty disk; each old one stops with flush on
    shutdown (``flush``: the AWS binding) and (``wipe``) its disk is deleted. "stop-first"
    with every replica, no flush and the same disks is the process runtime's down/up.
    Returns what was measured."""
    resolved = load_spec(None, environ={}, use_default_file=False)
    write_environment(render(resolved, "local"), tmp_path / "env")
    if edit is not None:  # a measurement of another setting (never in a test)
        rendered = tmp_path / "env" / "configs" / "mimir" / "mimir.yaml"
        rendered.write_text(edit(rendered.read_text()))
    plan = loopback.plan(resolved.spec, tmp_path / "env", tmp_path / "stack", s3_endpoint=s3["endpoint"],
                         s3_access_key=s3["access_key"], s3_secret_key=s3["secret_key"])
    spare = loopback.plan(resolved.spec, tmp_path / "env", tmp_path / "new", s3_endpoint=s3["endpoint"],
                          s3_access_key=s3["access_key"], s3_secret_key=s3["secret_key"])
    replicas = plan.spec.mimir_replicas
    config = plan.config("mimir", "mimir.yaml")
    # The AWS binding (task storage dies with the task), else the process binding's own.
    flushing = {"MIMIR_FLUSH_ON_SHUTDOWN": "true"} if flush else {}
    envs = {r: {**plan.env[r], **flushing} for r in replicas}
    swap = replicas[:replaced]
    # Whom a new task joins: its service's name resolves to the old and the new task while
    # both run (start-first: the old ones' addresses reach every member), to the new one
    # once the old one is gone (stop-first).
    joins = {f"MIMIR_MEMBERLIST_JOIN_{i}": (spare if order == "stop-first" and r in swap else plan).env[r][
        f"MIMIR_MEMBERLIST_JOIN_{i}"] for i, r in enumerate(replicas, start=1)}
    # Same ring id as the task it replaces (its service's, as on ECS).
    new_envs = {r: {**spare.env[r], **flushing, "MIMIR_INSTANCE_ID": envs[r]["MIMIR_INSTANCE_ID"], **joins}
                for r in swap}
    if not wipe:  # the same disk (a process runtime's down/up)
        for r in swap:
            new_envs[r]["MIMIR_DATA_DIR"] = envs[r]["MIMIR_DATA_DIR"]
    procs = {r: _mimir(r, config, envs[r], tmp_path) for r in replicas}
    news = {r: _mimir(f"{r}-new", config, new_envs[r], tmp_path) for r in swap}
    traffic = None
    marks: dict[str, float] = {}
    current = {r: plan.url(r) for r in replicas}
    try:
        for p in procs.values():
            p.start()
        for r in replicas:
            wait_until(f"{r} /ready", lambda r=r: _mimir_ready(plan.url(r)), 180, list(procs.values()))
        traffic = MimirTraffic(list(current.values()))
        traffic.start()
        wait_until("samples accepted before the deploy", lambda: len(traffic.accepted) >= 30, 120, list(procs.values()))
        every = lambda: [*news.values(), *procs.values()]  # noqa: E731

        def start_new() -> None:
            marks["new_start"] = time.monotonic()
            for p in news.values():
                p.start()
            for r in swap:
                wait_until(f"the new {r} /ready", lambda r=r: _mimir_ready(spare.url(r)), 180,
                           [p for p in every() if p.proc is not None and p not in (procs[x] for x in swap)])
            marks["new_ready"] = time.monotonic()

        def stop_old() -> None:
            marks["old_stop"] = time.monotonic()
            # SIGTERM, all at once as ECS stops a deployment's old tasks: each cuts its head into
            # a block, ships it, leaves the rings.
            threads = [threading.Thread(target=_stop, args=(procs[r],)) for r in swap]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            marks["old_stopped"] = time.monotonic()
            if wipe:
                for r in swap:  # the task's storage is gone
                    shutil.rmtree(envs[r]["MIMIR_DATA_DIR"], ignore_errors=True)

        def route(to_new: bool) -> None:
            for r in swap:
                if to_new:
                    current[r] = spare.url(r)
                else:
                    current.pop(r, None)
            traffic.bases = list(current.values()) or traffic.bases

        if order == "start-first":
            start_new()
            route(True)  # the gateway resolves the name to the new task
            stop_old()
        else:
            route(False)  # the old task is deregistered from the name as it stops
            if not current:
                traffic.bases = []
            stop_old()
            start_new()
            route(True)
        marks["switched"] = time.monotonic()
        time.sleep(settle)
        marks["traffic_stop"] = time.monotonic()
        traffic.stop.set()
        traffic.join(timeout=30)
        accepted = {s for s, _ in traffic.accepted}
        assert len(accepted) > 50, (len(accepted), traffic.refused[-3:])
        live = [*news.values(), *(procs[r] for r in replicas[replaced:])]
        readers = list(current.values())
        first_look = None
        # Bounded by the bucket index's refresh (compactor 15s, store-gateway and querier 15s, the
        # querier looks every minute); 5m and 5m left shipped heads out for 9 min (the test then failed).
        missing, give_up = accepted, time.monotonic() + deadline
        while time.monotonic() < give_up:
            try:
                missing = set()
                for base in readers:
                    missing |= accepted - _mimir_visible(base, traffic.metric)
            except requests.RequestException:
                missing = accepted
            if first_look is None:
                first_look = len(missing)
            if not missing:
                break
            for p in live:
                assert p.alive(), f"{p.name} exited:\n{p.tail()}"
            time.sleep(2)
        since = min(marks["old_stop"], marks["new_start"]) - 0.5
        during = [q for q in traffic.queries if q[0] >= since]
        result = {
            "order": order,
            "replaced": replaced,
            "wipe": wipe,
            "flush": envs[replicas[0]]["MIMIR_FLUSH_ON_SHUTDOWN"],
            "accepted": len(accepted),
            "refused": len(traffic.refused),
            "refused_window_s": round(_window([r[1] for r in traffic.refused]), 1),
            "refused_statuses": sorted({r[2] for r in traffic.refused}),
            "refused_examples": [r[2:] for r in traffic.refused[:2]],
            "queries_during": len(during),
            "queries_short": sum(1 for q in during if q[2] > 0),
            "max_missing_during": max((q[2] for q in during), default=0),
            "query_gap_window_s": round(_window([q[0] for q in during if q[2] > 0]), 1),
            "query_errors": len(traffic.query_errors),
            "query_error_examples": [e[1:] for e in traffic.query_errors[:2]],
            "old_stop_s": round(marks["old_stopped"] - marks["old_stop"], 1),
            "new_ready_s": round(marks["new_ready"] - marks["new_start"], 1),
            "missing_after_traffic": first_look,
            "all_visible_after_s": round(time.monotonic() - marks["traffic_stop"], 1),
            "missing_at_end": sorted(missing)[:10],
        }
        print(f"\nMimir replacement: {json.dumps(result)}")
        return result
    finally:
        if traffic is not None:
            traffic.stop.set()
        for p in [*news.values(), *procs.values()]:
            _stop(p, 30)


@pytest.mark.parametrize("order,replaced", [("start-first", 1), ("start-first", 3)])
def test_mimir_replaced_as_ecs_does_loses_nothing_and_the_gap_is_measured(tmp_path, moto_s3, order, replaced):
    require_tool("mimir", "build Mimir 3 to run the rolling replacement")
    result = mimir_replacement(tmp_path, moto_s3, order, replaced)
    assert not result["missing_at_end"], result


@pytest.mark.parametrize("flush,wipe", [(True, True), (False, False)], ids=["aws-flush-wiped", "process-down-up"])
def test_mimir_full_stop_and_start_keeps_every_sample(tmp_path, moto_s3, flush, wipe):
    """Every replica stops, then every replica starts: AWS (flush on shutdown, the disks go
    with the tasks; a destroy and apply, or a deploy at 0/100) and the process runtime's
    down/up (no flush, the WAL replays from the same disks)."""
    require_tool("mimir", "build Mimir 3 to run the rolling replacement")
    result = mimir_replacement(tmp_path, moto_s3, "stop-first", 3, wipe=wipe, flush=flush)
    assert not result["missing_at_end"], result
