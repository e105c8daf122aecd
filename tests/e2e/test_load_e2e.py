"""`obskit load` against the real local stack, with Docker: the report balances, the
backend stored everything that was accepted, and freshness was sampled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


from e2e.helpers import obskit

pytestmark = pytest.mark.docker


def test_steady_load_is_stored_without_loss(project_dir):
    obskit(project_dir, "up", "--no-verify")
    out = json.loads(obskit(project_dir, "load", "steady", "--duration", "20s", "--workers", "2", "--json").stdout)
    report = out["report"]
    assert report["balanced"] is True
    for key, t in report["totals"].items():
        # steady is far inside the default limits: everything scheduled is offered and accepted
        assert t["target"] == t["offered"] == t["accepted"] > 0 and t["not_sent"] == 0, (key, t)
        assert t["latency_ms"]["p99.9"] is not None
    for tenant, counted in report["backend"]["tenants"].items():
        assert counted["logs_loss"] == 0 and counted["points_loss"] == 0, (tenant, counted)
    for tenant, fresh in report["freshness"].items():
        assert fresh["logs"]["samples"] and fresh["metrics"]["samples"], tenant
        assert fresh["logs"]["failed"] == 0 and fresh["metrics"]["failed"] == 0, (tenant, fresh)
    assert report["totals"]["apps/logs"]["bytes"]["gzip_ratio"] < 10  # realistic content
    assert {Path(f).name for f in out["files"]} == {"report.json", "throughput.png", "latency.png", "freshness.png"}
