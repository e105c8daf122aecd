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
    for tenant, counted in report["backend"]["tenants"].items():
        assert counted["logs_loss"] == 0 and counted["points_loss"] == 0, (tenant, counted)
    assert report["freshness"]["logs"]["samples"] and report["freshness"]["metrics"]["samples"]
    assert {Path(f).name for f in out["files"]} == {"report.json", "throughput.png", "latency.png", "freshness.png"}
