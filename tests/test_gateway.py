"""The gateway is the only way in: a real nginx with the rendered config, the loopback
bindings and the generated certificates, in front of stub upstreams that record what
they receive."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from obskit import loopback
from obskit.render import render, write_environment
from obskit.spec.load import load_spec

from conftest import require_tool
from stubs import Stub, SyslogSink
from support import running_gateway, wait_until

RATE, BURST = 1, 3  # apps' writer and reader: 1 request/s, burst 3 (slow enough for busy CI machines)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    require_tool("nginx", "apt-get install nginx")
    tmp = tmp_path_factory.mktemp("gateway")
    resolved = load_spec(None, environ={}, use_default_file=False, sets=[
        f"tenants[0].limits.requests_per_second={RATE}", f"tenants[0].limits.burst={BURST}",
        "tenants[1].limits.requests_per_second=1000", "tenants[1].limits.burst=1000",
        "gateway.client_max_body_size=8k",
        # The collector's intake (/v1/*) is its own tenant's writer's only: here sandbox's,
        # whose limits are high (tests/test_gateway_access.py covers the default, apps).
        "collector.tenant=sandbox",
    ])
    files = render(resolved, "local")
    write_environment(files, tmp / "env")
    plan = loopback.plan(resolved.spec, tmp / "env", tmp / "work")
    stubs = {name: Stub(name, plan.ports[name]["http"]).start()
             for name in ["loki", "otelcol", "grafana", *resolved.spec.mimir_replicas]}
    syslog = SyslogSink(plan.ports["otelcol"]["syslog"])
    try:
        with running_gateway(plan, tmp) as (base, ca):
            yield {"base": base, "ca": str(ca), "plan": plan, "stubs": stubs, "syslog": syslog,
                   "files": files, "access_log": Path(plan.env["gateway"]["OBSKIT_GW_ACCESS_LOG"])}
    finally:
        syslog.stop()
        for stub in stubs.values():
            stub.stop()


def creds(gw, user):
    tenant_role = user.rsplit("-", 1)
    name = f"tenant-{tenant_role[0]}-{tenant_role[1]}-password" if len(tenant_role) == 2 and tenant_role[1] in ("read", "write") else "gateway-admin-password"
    return user, gw["plan"].secrets[name]


def call(gw, method, path, user=None, **kw):
    auth = creds(gw, user) if user else None
    return requests.request(method, gw["base"] + path, auth=auth, verify=gw["ca"], timeout=10, **kw)


def last(stub):
    return stub.seen[-1]


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize("method, path", [("POST", "/loki/api/v1/push"), ("GET", "/loki/api/v1/query"),
                                          ("POST", "/otlp/v1/metrics"), ("GET", "/prometheus/api/v1/query"),
                                          ("POST", "/v1/logs"), ("POST", "/api/v1/push")])
def test_401_without_or_with_wrong_credentials(gw, method, path):
    r = call(gw, method, path)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    assert r.text == "authentication required\n"
    r = requests.request(method, gw["base"] + path, auth=("sandbox-write", "wrong"), verify=gw["ca"], timeout=10)
    assert r.status_code == 401
    r = requests.request(method, gw["base"] + path, auth=("nobody", "x"), verify=gw["ca"], timeout=10)
    assert r.status_code == 401


def test_403_for_the_wrong_role(gw):
    assert call(gw, "POST", "/loki/api/v1/push", "sandbox-read").status_code == 403
    assert call(gw, "POST", "/otlp/v1/metrics", "sandbox-read").status_code == 403
    assert call(gw, "GET", "/loki/api/v1/query", "sandbox-write").status_code == 403
    r = call(gw, "GET", "/prometheus/api/v1/query", "sandbox-write")
    assert r.status_code == 403 and r.text.startswith("forbidden")


def test_tenant_header_comes_from_the_credential(gw):
    loki = gw["stubs"]["loki"]
    r = call(gw, "POST", "/loki/api/v1/push", "sandbox-write", data=b"{}",
             headers={"X-Scope-OrgID": "apps", "Content-Type": "application/json"})
    assert r.status_code == 204
    seen = last(loki)
    assert seen.headers["x-scope-orgid"] == "sandbox"  # the client's header was replaced
    assert "authorization" not in seen.headers  # credentials stop at the gateway
    assert seen.headers["x-forwarded-proto"] == "https"


def test_cross_tenant_read_is_refused(gw):
    mimir = [gw["stubs"][r] for r in gw["plan"].spec.mimir_replicas]
    before = sum(len(s.seen) for s in mimir)
    r = call(gw, "GET", "/prometheus/api/v1/query?query=up", "sandbox-read", headers={"X-Scope-OrgID": "apps"})
    assert r.status_code == 200
    newest = max((s.seen[-1] for s in mimir if s.seen), key=lambda x: 0) if before else None
    received = [seen for s in mimir for seen in s.seen][before:]
    assert all(seen.headers["x-scope-orgid"] == "sandbox" for seen in received) and received
    del newest


def test_admin_acts_for_the_operators_tenant(gw):
    r = call(gw, "POST", "/loki/api/v1/push", "obskit-admin", data=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 204 and last(gw["stubs"]["loki"]).headers["x-scope-orgid"] == "ops"


# --------------------------------------------------------------------------- routes


@pytest.mark.parametrize("method, path, stub, tenant_header", [
    ("POST", "/loki/api/v1/push", "loki", True),
    ("POST", "/otlp/v1/logs", "loki", True),
    ("GET", "/loki/api/v1/query_range", "loki", True),
    ("POST", "/v1/logs", "otelcol", True),
    ("POST", "/v1/metrics", "otelcol", True),
])
def test_routes_reach_their_backend(gw, method, path, stub, tenant_header):
    user = "sandbox-write" if method == "POST" else "sandbox-read"
    target = gw["stubs"][stub]
    count = len(target.seen)
    r = call(gw, method, path, user, data=b"x" if method == "POST" else None)
    assert r.status_code in (200, 204)
    assert len(target.seen) == count + 1 and last(target).path.startswith(path)


def test_grafana_route_passes_websockets_and_its_own_auth(gw):
    grafana = gw["stubs"]["grafana"]
    r = requests.get(gw["base"] + "/grafana/api/live/ws", verify=gw["ca"], timeout=10,
                     headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert r.status_code == 200
    seen = last(grafana)
    assert seen.path == "/grafana/api/live/ws"
    assert seen.headers["upgrade"] == "websocket" and seen.headers["connection"].lower() == "upgrade"
    assert "x-scope-orgid" not in seen.headers


def test_unknown_paths_are_404(gw):
    for path in ("/", "/admin", "/loki/api/v2/push", "/prometheus/metrics", "/otlp/v1/traces"):
        r = call(gw, "GET", path, "obskit-admin")
        assert r.status_code == 404, path


def test_traces_are_a_clear_404_after_authentication(gw):
    """The collector has no traces pipeline: /v1/traces is answered by the gateway itself,
    saying so, but only to a writer (auth, role and rate limit run first, like any push)."""
    collector = gw["stubs"]["otelcol"]
    before = len(collector.seen)
    assert call(gw, "POST", "/v1/traces", data=b"x").status_code == 401
    assert call(gw, "POST", "/v1/traces", "sandbox-read", data=b"x").status_code == 403
    for method in ("POST", "GET"):
        r = call(gw, method, "/v1/traces", "sandbox-write", data=b"x" if method == "POST" else None,
                 headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 404, (method, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("text/plain")
        assert "stores logs and metrics, not traces" in r.text
    assert len(collector.seen) == before  # never proxied
    # The other OTLP signals still reach the collector.
    assert call(gw, "POST", "/v1/logs", "sandbox-write", data=b"x").status_code in (200, 204)
    assert len(collector.seen) == before + 1
    def logged():
        lines = gw["access_log"].read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["path"] == "/v1/traces" and e["status"] == 404]

    wait_until("the access log lines of /v1/traces", lambda: len(logged()) >= 2, 5)
    assert all(e["route"] == "otlp_traces" and e["tenant"] == "sandbox" for e in logged())


def test_health_needs_no_auth_and_touches_no_backend(gw):
    counts = {n: len(s.seen) for n, s in gw["stubs"].items()}
    r = requests.get(gw["base"] + "/nginx-health", verify=gw["ca"], timeout=5)
    assert r.status_code == 200 and r.text == "OK\n"
    assert {n: len(s.seen) for n, s in gw["stubs"].items()} == counts


# --------------------------------------------------------------------------- limits


def test_rate_limit_429_with_retry_after_at_the_configured_rate(gw):
    time.sleep(BURST / RATE + 1)  # let the bucket of apps-write refill after earlier tests
    session = requests.Session()
    session.auth = creds(gw, "apps-write")
    session.verify = gw["ca"]
    session.trust_env = False
    codes = [session.post(gw["base"] + "/loki/api/v1/push", data=b"{}", timeout=5) for _ in range(12)]
    statuses = [r.status_code for r in codes]
    assert statuses[: BURST + 1] == [204] * (BURST + 1), statuses  # one at the rate, plus the burst
    assert statuses[BURST + 1:] == [429] * (12 - BURST - 1), statuses
    rejected = codes[-1]
    assert rejected.headers["Retry-After"] == "1" and rejected.text.startswith("rate limited")
    time.sleep(1.0 / RATE + 0.1)  # one token back at the configured rate, and only one
    again = [session.post(gw["base"] + "/loki/api/v1/push", data=b"{}", timeout=5).status_code for _ in range(2)]
    assert again == [204, 429]
    # Another credential of another tenant is not affected.
    assert call(gw, "POST", "/loki/api/v1/push", "sandbox-write", data=b"{}").status_code == 204


def test_oversized_body_is_413(gw):
    r = call(gw, "POST", "/loki/api/v1/push", "sandbox-write", data=b"x" * 9000)
    assert r.status_code == 413
    assert call(gw, "POST", "/loki/api/v1/push", "sandbox-write", data=b"x" * 7000).status_code == 204


# --------------------------------------------------------------------------- TLS


def test_tls_verifies_against_the_generated_ca_and_refuses_tls11(gw):
    port = gw["plan"].ports["gateway"]["https"]
    with pytest.raises(requests.exceptions.SSLError):
        s = requests.Session()
        s.trust_env = False
        s.get(gw["base"] + "/nginx-health", verify=True, timeout=5)  # system CAs do not know it
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    ok = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", gw["ca"],
                         "-verify_hostname", "localhost", "-verify_return_error"],
                        input="", capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0 and "Verify return code: 0 (ok)" in ok.stdout
    for old in ("-tls1_1", "-tls1"):
        refused = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", old],
                                 input="", capture_output=True, text=True, timeout=10)
        assert refused.returncode != 0, old


def test_plain_http_is_never_served(gw):
    counts = {n: len(s.seen) for n, s in gw["stubs"].items()}
    http = f"http://127.0.0.1:{gw['plan'].ports['gateway']['http']}"
    for method, path in (("GET", "/prometheus/api/v1/query"), ("POST", "/loki/api/v1/push"), ("GET", "/nginx-health")):
        r = requests.request(method, http + path, auth=creds(gw, "apps-write"), allow_redirects=False, timeout=5)
        assert r.status_code == 308 and r.headers["Location"] == gw["base"] + path
    assert {n: len(s.seen) for n, s in gw["stubs"].items()} == counts


# --------------------------------------------------------------------------- balancing


def test_reads_spread_across_mimir_replicas_and_fail_over(gw):
    replicas = [gw["stubs"][r] for r in gw["plan"].spec.mimir_replicas]
    before = [len(s.seen) for s in replicas]
    for _ in range(30):
        assert call(gw, "GET", "/prometheus/api/v1/query?query=up", "sandbox-read").status_code == 200
    spread = [len(s.seen) - b for s, b in zip(replicas, before)]
    assert sum(spread) == 30 and all(n > 0 for n in spread), spread

    down = replicas[1]
    down.stop()
    try:
        before = [len(s.seen) for s in replicas]
        for _ in range(30):
            assert call(gw, "GET", "/prometheus/api/v1/query?query=up", "sandbox-read").status_code == 200
            assert call(gw, "POST", "/otlp/v1/metrics", "sandbox-write", data=b"x").status_code == 204
        got = [len(s.seen) - b for s, b in zip(replicas, before)]
        assert got[1] == 0 and got[0] + got[2] == 60, got
    finally:
        down.start()


# --------------------------------------------------------------------------- logs


def test_access_log_is_json_with_tenant_route_status_and_no_secret(gw):
    call(gw, "GET", "/prometheus/api/v1/query?query=up", "apps-read")
    call(gw, "POST", "/loki/api/v1/push", "apps-read")

    def entries_now():
        return [json.loads(line) for line in gw["access_log"].read_text().splitlines()]

    # The log phase runs after the response is sent: wait for the last request's line.
    wait_until("the denied push's access log line",
               lambda: any(e["route"] == "loki_push" and e["user"] == "apps-read" for e in entries_now()), 10)
    entries = entries_now()
    query = next(e for e in reversed(entries) if e["route"] == "mimir_query" and e["user"] == "apps-read")
    assert query["tenant"] == "apps" and query["status"] == 200 and query["method"] == "GET"
    assert query["path"] == "/prometheus/api/v1/query" and isinstance(query["request_time"], (int, float))
    assert query["upstream"].startswith("127.0.0.1:")
    denied = next(e for e in reversed(entries) if e["route"] == "loki_push" and e["user"] == "apps-read")
    assert denied["status"] == 403
    secrets = [v for k, v in gw["plan"].secrets.items() if k.endswith("-password")]
    text = gw["access_log"].read_text()
    assert not any(s in text for s in secrets)
    assert "Basic " not in text and "authorization" not in text.lower()


def test_access_log_reaches_the_collector_in_the_shape_it_parses(gw):
    """nginx sends each line over syslog; the collector's UDP log receiver extracts the
    JSON with the regex in its rendered config. Apply that same regex here."""
    call(gw, "GET", "/loki/api/v1/labels", "sandbox-read")
    config = yaml.safe_load(gw["files"]["configs/otelcol/config.yaml"])
    receiver = next(v for k, v in config["receivers"].items() if k.split("/")[0] in ("udp_log", "udplog"))
    regex = receiver["operators"][0]["regex"]
    pattern = re.compile(regex.replace("(?P<", "(?P<"))
    wait_until("a syslog line", lambda: any("loki_query" in m for m in gw["syslog"].messages), 5)
    parsed = [json.loads(pattern.match(m).group("line")) for m in gw["syslog"].messages]
    assert any(e["route"] == "loki_query" and e["tenant"] == "sandbox" for e in parsed)
    assert all(e["connections_active"].isdigit() for e in parsed)  # unwrapped by stack-health
    secrets = [v for k, v in gw["plan"].secrets.items() if k.endswith("-password")]
    assert not any(s in m for m in gw["syslog"].messages for s in secrets)


# --------------------------------------------------------------------------- self-monitoring


def test_access_log_carries_the_open_connection_count(gw):
    """The gateway's load reaches Grafana through its access log (connections_active, from
    nginx's stub_status variable), not through a status listener the collector scrapes."""
    text = render(load_spec(None, environ={}, use_default_file=False), "local")[
        "configs/gateway/templates/nginx.conf.template"].decode()
    assert not re.search(r"^\s*stub_status\s*;", text, re.M) and "OBSKIT_GW_LISTEN_STATUS" not in text
    sessions = []
    try:
        for _ in range(3):  # three more client connections, held open by keep-alive
            s = requests.Session()
            s.trust_env = False
            s.verify = gw["ca"]
            assert s.get(gw["base"] + "/nginx-health", timeout=5).status_code == 200
            sessions.append(s)
        r = call(gw, "GET", "/loki/api/v1/labels", "apps-read")
        assert r.status_code == 200
    finally:
        for s in sessions:
            s.close()
    def logged():
        entries = [json.loads(line) for line in gw["access_log"].read_text().splitlines()]
        return [e for e in entries if e["route"] == "loki_query" and e["user"] == "apps-read"]

    # nginx writes the line when the request is finalized, which can be after the client
    # has read the answer.
    wait_until("the access log line", lambda: bool(logged()), 5)
    mine = logged()[-1]
    # A string, as the collector's json_parser keeps it; LogQL's unwrap reads the number.
    assert isinstance(mine["connections_active"], str) and int(mine["connections_active"]) >= 4, mine


def test_grafana_metrics_are_not_published_through_the_gateway(gw):
    grafana = gw["stubs"]["grafana"]
    before = len(grafana.seen)
    r = call(gw, "GET", "/grafana/metrics")
    assert r.status_code == 404
    assert len(grafana.seen) == before  # never reached Grafana
    assert call(gw, "GET", "/grafana/api/health").status_code == 200


# --------------------------------------------------------------------------- re-resolution


def _prepared(tmp_path, **overrides):
    """The rendered gateway prepared with the loopback bindings, some of them overridden."""
    from obskit.tools import nginx

    resolved = load_spec(None, environ={}, use_default_file=False)
    write_environment(render(resolved, "local"), tmp_path / "env")
    plan = loopback.plan(resolved.spec, tmp_path / "env", tmp_path / "work")
    env = dict(plan.env["gateway"]) | {"OBSKIT_GW_CONF_DIR": str(tmp_path / "conf")} | overrides
    return nginx.prepare(tmp_path / "env" / "configs" / "gateway", env)


def test_every_upstream_can_be_re_resolved_where_the_environment_says_so(aws_spec):
    from obskit import bindings

    resolved = load_spec(aws_spec, environ={})
    compose = bindings.services(resolved.spec, "local")["gateway"].env
    aws = bindings.services(resolved.spec, "prod")["gateway"].env
    assert (compose["OBSKIT_GW_RESOLVER"], compose["OBSKIT_GW_UPSTREAM_RESOLVE"]) == ("127.0.0.11", "resolve")
    assert (aws["OBSKIT_GW_RESOLVER"], aws["OBSKIT_GW_UPSTREAM_RESOLVE"]) == ("169.254.169.253", "resolve")
    text = render(resolved, "local")["configs/gateway/templates/nginx.conf.template"].decode()
    upstreams = re.findall(r"upstream (\w+) \{(.*?)\n    \}", text, re.S)
    assert {name for name, _ in upstreams} == {"obskit_loki", "obskit_mimir", "obskit_otelcol", "obskit_grafana"}
    for name, body in upstreams:
        assert f"zone {name} " in body, name  # "resolve" needs the upstream in shared memory
        servers = [line.strip() for line in body.splitlines() if line.strip().startswith("server ")]
        assert servers and all(s.endswith(" ${OBSKIT_GW_UPSTREAM_RESOLVE};") for s in servers), name
    assert "resolver ${OBSKIT_GW_RESOLVER} valid=10s" in text


def test_the_version_gate_agrees_with_the_nginx_on_path(tmp_path):
    """Forced on, "resolve" passes `nginx -t` exactly when obskit's gate says this nginx
    parses it (Debian's 1.22 does not; the pinned image's 1.30 does)."""
    require_tool("nginx", "apt-get install nginx")
    from obskit.errors import NginxError
    from obskit.tools import nginx

    assert not nginx.supports_upstream_resolve((1, 22, 1)) and not nginx.supports_upstream_resolve((1, 27, 2))
    assert nginx.supports_upstream_resolve((1, 27, 3)) and nginx.supports_upstream_resolve((1, 30, 5))
    found = nginx.version()
    assert found is not None and len(found) == 3
    prepared = _prepared(tmp_path, OBSKIT_GW_UPSTREAM_RESOLVE="resolve")
    try:
        nginx.test_config(prepared.conf)
        parsed = True
    except NginxError as exc:
        assert '"resolve"' in exc.output, exc.output
        parsed = False
    assert parsed == nginx.supports_upstream_resolve(found), found
    # And the loopback bindings follow the gate, so the rendered config always parses.
    nginx.test_config(_prepared(tmp_path / "gated").conf)


def test_with_resolve_the_gateway_starts_before_its_backends_have_names(tmp_path):
    """Names that do not resolve yet (a task not yet registered in Cloud Map) stop an nginx
    that resolves at start; with "resolve" it starts and resolves them later."""
    require_tool("nginx", "apt-get install nginx")
    from obskit.errors import NginxError
    from obskit.tools import nginx

    if not nginx.supports_upstream_resolve():
        pytest.skip(f"nginx {'.'.join(map(str, nginx.version()))} on PATH predates 1.27.3, which reads "
                    "'resolve'; the pinned gateway image does, and so does any newer nginx users run this with")
    names = {"OBSKIT_GW_LOKI": "loki.obskit.invalid:3100", "OBSKIT_GW_GRAFANA": "grafana.obskit.invalid:3000"}
    nginx.test_config(_prepared(tmp_path / "on", OBSKIT_GW_UPSTREAM_RESOLVE="resolve", **names).conf)
    with pytest.raises(NginxError) as info:
        nginx.test_config(_prepared(tmp_path / "off", OBSKIT_GW_UPSTREAM_RESOLVE="", **names).conf)
    assert "host not found" in info.value.output


# --------------------------------------------------------------------------- logs, last


def test_logs_after_this_module_hold_no_password_failed_user_or_query_string(gw):
    """Wrong passwords, the unknown user 'nobody', queries with query strings and a dead
    Mimir replica all happened above: none of it may show in the access log, the error log
    or the syslog copy."""
    texts = [gw["access_log"].read_text(), "\n".join(gw["syslog"].messages)]
    error_log = Path(gw["plan"].env["gateway"]["OBSKIT_GW_ERROR_LOG"])
    if error_log.exists():
        texts.append(error_log.read_text())
    secrets = [v for k, v in gw["plan"].secrets.items() if k.endswith("-password")]
    for text in texts:
        assert not [s for s in [*secrets, "wrong"] if s in text]
        assert '"nobody"' not in text and "query=" not in text and "?" not in text
    failed = [e for e in map(json.loads, texts[0].splitlines()) if e["status"] == 401]
    assert failed and all(e["user"] == "" for e in failed)


# --------------------------------------------------------------------------- a client's mistakes


def raw(gw, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (requests would not send CONNECT or an absolute-form target)."""
    import socket
    import ssl
    import urllib.parse

    url = urllib.parse.urlsplit(gw["base"])
    context = ssl.create_default_context(cafile=gw["ca"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname=url.hostname) as tls:
            tls.sendall(request)
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


CLIENT_MISTAKES = [
    ("CONNECT", b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\nConnection: close\r\n\r\n"),
    ("CONNECT authenticated", None),
    ("TRACE", b"TRACE /loki/api/v1/push HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    ("TRACE unknown path", b"TRACE / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    ("unknown method", b"FROB /loki/api/v1/push HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    ("unknown method on health", b"BREW /nginx-health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    ("absolute-form target", b"GET http://example.com/loki/api/v1/query HTTP/1.1\r\nHost: localhost\r\n"
                             b"Connection: close\r\n\r\n"),
    ("absolute-form https", b"POST https://localhost/otlp/v1/logs HTTP/1.1\r\nHost: localhost\r\n"
                            b"Content-Length: 0\r\nConnection: close\r\n\r\n"),
    ("absolute-form CONNECT", b"CONNECT http://localhost/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    ("unparsable request line", b"GARBAGE\r\n\r\n"),
    ("control character in the target", b"GET /loki/\x01 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    ("no Host header", b"GET /loki/api/v1/query HTTP/1.1\r\nConnection: close\r\n\r\n"),
]


@pytest.mark.parametrize("name, request_bytes", CLIENT_MISTAKES, ids=[n for n, _ in CLIENT_MISTAKES])
def test_a_clients_mistake_is_a_4xx_never_a_500(gw, name, request_bytes):
    """A 500 counts toward the stack's 5xx panels and alerts: whoever can reach the gateway
    must not be able to trip them with a method or a target form nginx handles specially."""
    if request_bytes is None:  # CONNECT with a valid credential
        import base64

        user, password = creds(gw, "apps-write")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request_bytes = (b"CONNECT /otlp/v1/logs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic "
                         + token.encode() + b"\r\nConnection: close\r\n\r\n")
    before = len(gw["access_log"].read_text().splitlines())
    status, data = raw(gw, request_bytes)
    assert 400 <= status < 500, (name, data[:300])
    assert status in (400, 405), (name, data[:300])
    def entries():
        return [json.loads(line) for line in gw["access_log"].read_text().splitlines()[before:]]

    # nginx writes the access log line after it has closed the connection (log phase runs
    # when the request is freed), so the line may land a moment after the client saw EOF.
    wait_until(f"the access log line of {name!r}", lambda: entries(), 10)
    assert all(400 <= e["status"] < 500 for e in entries()), entries()
    assert not any(s in data.decode("latin-1") for k, s in gw["plan"].secrets.items() if k.endswith("-password"))
    if status == 405:
        assert "CONNECT" not in re.search(rb"\r\nAllow: ([^\r]*)", data).group(1).decode()
