"""Two tenants push through the real gateway into a real Loki (S3 on a moto server), and
each record is found only in its own tenant. The collector's intake (/v1/*) is open only
to the collector tenant's writer: another tenant's writer cannot push through it, since
the collector would re-export its data as the collector's tenant. The collector itself is
a recording upstream here: what it receives is the proof."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from obskit import loopback
from obskit.render import render, write_environment
from obskit.spec.load import load_spec

from conftest import require_tool
from support import Proc, http_ok, running_gateway, wait_until
from test_gateway_access import Recorder

pytestmark = pytest.mark.binary


def _otlp_logs(service: str, body: str) -> bytes:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    msg = ExportLogsServiceRequest()
    rl = msg.resource_logs.add()
    for key, value in (("service.name", service), ("service.instance.id", "isolation-1")):
        kv = rl.resource.attributes.add()
        kv.key, kv.value.string_value = key, value
    rec = rl.scope_logs.add().log_records.add()
    rec.time_unix_nano = time.time_ns()
    rec.body.string_value = body
    return msg.SerializeToString()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, moto_s3):
    require_tool("loki", "build or install Loki 3.7 (PATH=/opt/obskit-bin:$PATH)")
    require_tool("nginx", "apt-get install nginx")
    tmp = tmp_path_factory.mktemp("isolation")
    resolved = load_spec(None, environ={}, use_default_file=False)
    write_environment(render(resolved, "local"), tmp / "env")
    plan = loopback.plan(resolved.spec, tmp / "env", tmp / "work", s3_endpoint=moto_s3["endpoint"],
                         s3_access_key=moto_s3["access_key"], s3_secret_key=moto_s3["secret_key"])
    collector = Recorder("otelcol", plan.ports["otelcol"]["http"]).start()
    loki = Proc("loki", ["loki", f"-config.file={plan.config('loki', 'loki.yaml')}", "-config.expand-env=true",
                         "-target=all"], plan.env["loki"], tmp).start()
    try:
        wait_until("loki /ready", lambda: http_ok(f"{plan.url('loki')}/ready"), 90, [loki])
        with running_gateway(plan, tmp) as (base, ca):
            yield {"plan": plan, "base": base, "ca": str(ca), "loki": loki, "collector": collector}
    finally:
        loki.stop()
        collector.stop()


def _session(stack, user: str) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = stack["ca"]
    tenant, role = user.rsplit("-", 1)
    s.auth = (user, stack["plan"].secrets[f"tenant-{tenant}-{role}-password"])
    return s


def test_each_tenants_records_land_only_in_its_own_tenant(stack):
    base, plan = stack["base"], stack["plan"]
    run = uuid.uuid4().hex[:10]
    marks = {t: f"isolation-{t}-{run}" for t in ("apps", "sandbox")}
    other = {"apps": "sandbox", "sandbox": "apps"}
    for tenant, mark in marks.items():
        writer = _session(stack, f"{tenant}-write")
        # Each writer claims the other tenant's org id: the gateway replaces it.
        forged = {"X-Scope-OrgID": other[tenant]}
        r = writer.post(f"{base}/otlp/v1/logs", data=_otlp_logs("isolation", f"{mark} otlp"), timeout=10,
                        headers={**forged, "Content-Type": "application/x-protobuf"})
        assert r.status_code in (200, 204), (tenant, r.status_code, r.text)
        push = {"streams": [{"stream": {"service_name": "isolation"}, "values": [[str(time.time_ns()), f"{mark} json"]]}]}
        r = writer.post(f"{base}/loki/api/v1/push", json=push, headers=forged, timeout=10)
        assert r.status_code == 204, (tenant, r.status_code, r.text)

    def lines(get) -> list[str]:
        r = get(params={"query": '{service_name="isolation"}', "start": (time.time_ns() - 600 * 10**9), "limit": 1000})
        r.raise_for_status()
        return [v[1] for s in r.json()["data"]["result"] for v in s["values"]]

    loki_url = f"{plan.url('loki')}/loki/api/v1/query_range"
    for tenant, mark in marks.items():
        reader = _session(stack, f"{tenant}-read")
        through_gateway = lambda **kw: reader.get(f"{base}/loki/api/v1/query_range", timeout=10,  # noqa: E731
                                                  headers={"X-Scope-OrgID": other[tenant]}, **kw)
        wait_until(f"both of {tenant}'s records", lambda: {f"{mark} otlp", f"{mark} json"} <= set(lines(through_gateway)),
                   60, [stack["loki"]])
    for tenant, mark in marks.items():
        reader = _session(stack, f"{tenant}-read")
        seen = lines(lambda **kw: reader.get(f"{base}/loki/api/v1/query_range", timeout=10, **kw))
        assert sorted(seen) == sorted([f"{mark} otlp", f"{mark} json"]), (tenant, seen)
        # And Loki itself, asked directly for each tenant, agrees.
        direct = lines(lambda **kw: requests.get(loki_url, headers={"X-Scope-OrgID": tenant}, timeout=10, **kw))
        assert sorted(direct) == sorted(seen), (tenant, direct)
    assert lines(lambda **kw: requests.get(loki_url, headers={"X-Scope-OrgID": "ops"}, timeout=10, **kw)) == []


def test_only_the_collector_tenants_writer_pushes_through_the_collector(stack):
    base, collector = stack["base"], stack["collector"]
    body = _otlp_logs("isolation-intake", "through the collector")
    before = len(collector.seen)
    for user in ("sandbox-write", "ops-write"):
        r = _session(stack, user).post(f"{base}/v1/logs", data=body, timeout=10,
                                       headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 403, (user, r.status_code)
    assert len(collector.seen) == before  # never reached the collector
    r = _session(stack, "apps-write").post(f"{base}/v1/logs", data=body, timeout=10,
                                           headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 200
    got = collector.seen[-1]
    assert got["path"] == "/v1/logs" and got["body"] == body and got["headers"]["x-scope-orgid"] == "apps"
    assert "authorization" not in got["headers"]
