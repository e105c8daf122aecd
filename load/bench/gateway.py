#!/usr/bin/env python3
"""Benchmark: the gateway's overhead against a direct connection.

The rendered gateway (TLS 1.2+, basic auth with obskit's {SSHA} hashes, per-credential
limit_req, tenant header) runs on loopback with the loopback bindings, in front of a
stub upstream (a second nginx answering 204). wrk pushes 1 KB and 100 KB bodies with
keep-alive, first straight to the stub (plain HTTP, as the gateway reaches Loki), then
through the gateway. A last run swaps the htpasswd file for apr1 (MD5, 1000 rounds) hashes
to show what the hash scheme costs. Limits are set high so that nothing is rejected:
limit_req still runs on every request.

    python load/bench/gateway.py [--duration 8] [--connections 32]

Writes load/bench/results/gateway.md unless --no-write. Needs nginx, wrk and openssl.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent

STUB_CONF = """
worker_processes 1;
pid {dir}/stub.pid;
error_log {dir}/stub-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/stub-body;
    client_max_body_size 1m;
    client_body_buffer_size 1m;
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 100000;
        # Answer like a push; nginx reads and discards the body first.
        location / {{ return 204; }}
    }}
}}
"""

LUA = """
wrk.method = "POST"
wrk.body = string.rep("x", {size})
wrk.headers["Content-Type"] = "application/x-protobuf"
{auth}
"""


def wrk(url: str, size: int, auth: str | None, duration: int, connections: int, tmp: Path) -> dict:
    script = tmp / f"post-{size}.lua"
    header = f'wrk.headers["Authorization"] = "{auth}"' if auth else ""
    script.write_text(LUA.format(size=size, auth=header))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": lat(50), "p99": lat(99),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1) if errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-write", action="store_true")
    ns = parser.parse_args()
    for tool in ("nginx", "wrk", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")

    from obskit import loopback
    from obskit.render import render, write_environment
    from obskit.spec.load import load_spec
    from obskit.tools import nginx

    tmp = Path(tempfile.mkdtemp(prefix="obskit-bench-"))
    resolved = load_spec(None, environ={}, use_default_file=False, sets=[
        "tenants[0].limits.requests_per_second=100000", "tenants[0].limits.burst=100000",
        "gateway.client_max_body_size=1m",
    ])
    write_environment(render(resolved, "local"), tmp / "env")
    plan = loopback.plan(resolved.spec, tmp / "env", tmp / "work")
    stub_port = plan.ports["loki"]["http"]
    stub_conf = tmp / "stub.conf"
    stub_conf.write_text(STUB_CONF.format(dir=tmp, port=stub_port))
    prepared = nginx.prepare(tmp / "env/configs/gateway", plan.env["gateway"])
    # Benchmark logging to a file, not the terminal; the syslog copy goes to a closed port.
    procs = []
    try:
        for conf in (stub_conf, prepared.conf):
            procs.append(subprocess.Popen(["nginx", "-c", str(conf), "-e", str(tmp / "err.log"), "-g", "daemon off;"]))
        time.sleep(1)
        user, password = "apps-write", plan.secrets["tenant-apps-write-password"]
        import base64

        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        gw = f"https://localhost:{plan.ports['gateway']['https']}/loki/api/v1/push"
        direct = f"http://127.0.0.1:{stub_port}/loki/api/v1/push"
        rows = []
        for size, label in ((1024, "1 KB"), (100 * 1024, "100 KB")):
            d = wrk(direct, size, None, ns.duration, ns.connections, tmp)
            g = wrk(gw, size, auth, ns.duration, ns.connections, tmp)
            rows.append((label, "direct (plain HTTP to the stub)", d))
            rows.append((label, "through the gateway (TLS, {SSHA} auth, limit_req)", g))
        # The same with apr1 hashes: what a slower scheme costs.
        htpasswd = Path(plan.env["gateway"]["OBSKIT_GW_SECRETS_DIR"]) / "htpasswd"
        # On stdin: a generated password may start with "-", and stays out of the process list.
        apr1 = subprocess.run(["openssl", "passwd", "-apr1", "-stdin"], input=password + "\n", capture_output=True,
                              text=True, check=True).stdout.strip()
        os.chmod(htpasswd, 0o600)
        htpasswd.write_text(f"{user}:{apr1}\n")
        os.chmod(htpasswd, 0o400)
        rows.append(("1 KB", "through the gateway, apr1 hashes instead", wrk(gw, 1024, auth, ns.duration, ns.connections, tmp)))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    model = cpu_model()
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    lines = [
        "# Gateway overhead",
        "",
        f"Machine: {model}, {os.cpu_count()} cores; {nginx_version}; wrk, 1 thread, {ns.connections} keep-alive connections, {ns.duration} s per run.",
        "Method: `load/bench/gateway.py`. The rendered gateway (worker_processes auto) in front of a stub upstream",
        "(nginx, 1 worker, discarding the body and answering 204). Direct = wrk straight to the stub over plain HTTP.",
        "Gateway = TLS 1.3, basic auth, the role check (auth_request), limit_req with limits too high to reject, tenant header.",
        "wrk, the gateway and the stub share the same cores, so absolute numbers are a floor.",
        "",
        "| body | path | requests/s | p50 (ms) | p99 (ms) | non-2xx | socket errors |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for label, path, r in rows:
        lines.append(f"| {label} | {path} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['non2xx']} | {r['errors'] or '-'} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if not ns.no_write:
        (HERE / "results" / "gateway.md").write_text(report)


if __name__ == "__main__":
    main()
