"""A deploy replaces Loki the way ECS does: start the new task, then stop the old one (it
flushes to the object store on the way out), then its disk is gone. Real Loki on the
process bindings, S3 on moto. Writes may be refused only while the old ingester shuts
down, and every accepted line must become queryable from the new Loki; the test
measures how long after the old one stopped the last of them became visible, and how
long writes were refused (both recorded in terraform/DESIGN.md).

(Mimir's replacement needs a mimir program, which this machine cannot get; the same
shape of test belongs here when one is present.)
"""

from __future__ import annotations

import json
import shutil
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
