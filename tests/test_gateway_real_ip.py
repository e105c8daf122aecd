"""Whose word the gateway takes for a client's address: a trusted load balancer's
X-Forwarded-For (AWS: the ALB, from inside the VPC), and nobody's elsewhere. Real nginx."""

from __future__ import annotations

import requests

from obskit import bindings, loopback
from obskit.render import render, write_environment
from obskit.spec.load import load_spec

from conftest import require_tool
from stubs import Stub
from support import running_gateway

CLIENT = "203.0.113.7"  # TEST-NET-3: a client address behind the load balancer


def _forwarded_address(tmp_path, trusted: str | None) -> str:
    """X-Real-IP as Loki receives it, for a request claiming X-Forwarded-For: CLIENT."""
    resolved = load_spec(None, environ={}, use_default_file=False)
    write_environment(render(resolved, "local"), tmp_path / "env")
    plan = loopback.plan(resolved.spec, tmp_path / "env", tmp_path / "work")
    if trusted is not None:
        plan.env["gateway"]["OBSKIT_GW_TRUSTED_PROXY"] = trusted
    loki = Stub("loki", plan.ports["loki"]["http"]).start()
    try:
        with running_gateway(plan, tmp_path) as (base, ca):
            user = f"{plan.spec.tenants[0].name}-read"
            r = requests.get(f"{base}/loki/api/v1/labels", auth=(user, plan.secrets[f"tenant-{user}-password"]),
                             headers={"X-Forwarded-For": CLIENT}, verify=str(ca), timeout=10)
            assert r.status_code == 200, r.text
            return loki.seen[-1].headers["x-real-ip"]
    finally:
        loki.stop()


def test_no_one_is_trusted_outside_aws(tmp_path):
    require_tool("nginx", "apt-get install nginx")
    assert _forwarded_address(tmp_path, None) == "127.0.0.1"  # the client's own claim is ignored


def test_the_trusted_load_balancer_names_the_client(tmp_path):
    require_tool("nginx", "apt-get install nginx")
    assert _forwarded_address(tmp_path, "127.0.0.1/32") == CLIENT


def test_aws_trusts_the_alb_subnets_and_nothing_else(aws_spec):
    spec = load_spec(aws_spec, environ={}).spec
    # The VPC's two public subnets (terraform/modules/network), not the whole VPC: a task
    # in the VPC cannot claim a client's address (tests/test_aws_constraints.py compares
    # the block with what terraform cuts).
    assert bindings.services(spec, "prod")["gateway"].env["OBSKIT_GW_TRUSTED_PROXY"] == \
        bindings.alb_subnets(spec.environments["prod"].vpc_cidr) != spec.environments["prod"].vpc_cidr
    for env in ("local", "process"):
        assert bindings.services(spec, env)["gateway"].env["OBSKIT_GW_TRUSTED_PROXY"] == "unix:"
