#!/usr/bin/env python3
"""Benchmark: the gateway's overhead against a direct connection, before and after a change.

The rendered gateway (TLS 1.2+, basic auth with obskit's {SSHA} hashes, per-credential
limit_req, tenant header) runs on loopback with the loopback bindings, in front of a
stub upstream (a second nginx answering 204). wrk pushes 1 KB and 100 KB bodies with
keep-alive, first straight to the stub (plain HTTP, as the gateway reaches Loki), then
through the gateway as it was at --before (a git revision: its configs/gateway templates,
rendered with today's spec and bindings), then through the gateway of this tree, all in
the same run. A second measurement sends 1 KB pushes at a fixed low rate on one
connection (open loop), so the added latency is the gateway's own, not queueing. A last run swaps the htpasswd file for apr1 (MD5, 1000 rounds) hashes to
show what the hash scheme costs. Limits are set high so that nothing is rejected:
limit_req still runs on every request.

    python load/bench/gateway.py [--duration 8] [--connections 32] [--before REV]

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
REPO = HERE.parent.parent
# The gateway before issue 13 (least privilege: allowlisted routes, limits after auth).
BEFORE = "4cf27f54633e7f6ce0104d88225570fcdcfe81fe"

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
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": lat(50), "p99": lat(99),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1) if errors else "",
    }


class SyslogSink:
    """A UDP listener that takes the gateway's syslog datagrams and drops them."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            try:
                self.sock.recv(65536)
            except OSError:
                return
            self.received += 1

    def close(self) -> None:
        self.sock.close()


def open_loop(url: str, size: int, auth: str | None, rate: int, duration: float) -> dict:
    """POST ``size`` bytes at ``rate``/s on one keep-alive connection, each request at its
    due time (open loop); latency from the due time to the end of the response, in ms.
    ``late``: requests that started more than 1 ms after their due time (the client or the
    machine fell behind; their wait is in their latency)."""
    import http.client
    import ssl
    import urllib.parse

    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    headers = {"Content-Type": "application/x-protobuf"} | ({"Authorization": auth} if auth else {})
    body = b"x" * size
    conn.request("POST", u.path, body, headers)  # connect (and the TLS handshake) before the clock starts
    conn.getresponse().read()
    interval = 1.0 / rate
    start = time.perf_counter() + 0.05
    lat, late, non2xx = [], 0, 0
    for i in range(int(rate * duration)):
        due = start + i * interval
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        elif now - due > 0.001:
            late += 1
        conn.request("POST", u.path, body, headers)
        answer = conn.getresponse()
        answer.read()
        lat.append((time.perf_counter() - due) * 1000)
        non2xx += not (200 <= answer.status < 300)
    conn.close()
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
    return {"requests": len(lat), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "late": late, "non2xx": non2xx}


def cpu_seconds(master: int) -> float:
    """CPU time (user + system) used so far by an nginx master's worker processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def render_gateway_at(rev: str, resolved, dest: Path) -> Path:
    """configs/gateway as it was at ``rev``, rendered with today's spec, into ``dest``."""
    import io
    import tarfile

    from obskit.render import _jinja_env, config_context

    src = dest / "src"
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "configs/gateway"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, filter="data")
    import jinja2

    jenv = _jinja_env()
    jenv.loader = jinja2.FileSystemLoader(str(src))
    out = dest / "configs" / "gateway"
    for path in sorted((src / "configs" / "gateway").rglob("*")):
        if not path.is_file() or path.name.startswith("_"):
            continue
        rel = path.relative_to(src).as_posix()
        target = dest / (rel[: -len(".j2")] if rel.endswith(".j2") else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".j2"):
            target.write_text(jenv.get_template(rel).render(**config_context(resolved.spec)))
        else:
            target.write_bytes(path.read_bytes())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the table shows medians")
    parser.add_argument("--before", default=BEFORE, help="the git revision to compare with (default: %(default)s)")
    parser.add_argument("--low-rate", type=int, default=100,
                        help="requests/s of the one-connection open-loop run (0: none)")
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
    from obskit.loopback import free_port

    # The gateway copies each access line to syslog (UDP): a listener takes them, as the
    # collector does in the stack. A closed port costs nginx an ICMP error per datagram.
    syslog = SyslogSink()
    plan.env["gateway"]["OBSKIT_GW_LOG_SYSLOG"] = f"127.0.0.1:{syslog.port}"
    before_env = {**plan.env["gateway"], "OBSKIT_GW_CONF_DIR": str(tmp / "before-conf"),
                  "OBSKIT_GW_TEMP_DIR": str(tmp / "before-tmp"), "OBSKIT_GW_PID_FILE": str(tmp / "before.pid"),
                  "OBSKIT_GW_ACCESS_LOG": str(tmp / "before-access.log"),
                  "OBSKIT_GW_LISTEN_HTTPS": f"127.0.0.1:{free_port()}", "OBSKIT_GW_LISTEN_HTTP": f"127.0.0.1:{free_port()}"}
    gateways = {
        "before": nginx.prepare(render_gateway_at(ns.before, resolved, tmp / "before"), before_env),
        "after": nginx.prepare(tmp / "env/configs/gateway", plan.env["gateway"]),
    }
    user, password = "apps-write", plan.secrets["tenant-apps-write-password"]
    import base64

    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    urls = {
        "direct": f"http://127.0.0.1:{stub_port}/loki/api/v1/push",
        "before": f"https://localhost:{before_env['OBSKIT_GW_LISTEN_HTTPS'].split(':')[1]}/loki/api/v1/push",
        "after": f"https://localhost:{plan.ports['gateway']['https']}/loki/api/v1/push",
    }
    sizes = ((1024, "1 KB"), (100 * 1024, "100 KB"))
    runs: dict[tuple[str, str], list[dict]] = {}
    low: dict[str, list[dict]] = {}
    load_start = os.getloadavg()
    procs = []
    try:
        # Benchmark logging to a file, not the terminal; the syslog copy goes to SyslogSink.
        for conf in (stub_conf, gateways["before"].conf, gateways["after"].conf):
            procs.append(subprocess.Popen(["nginx", "-c", str(conf), "-e", str(tmp / "err.log"), "-g", "daemon off;"]))
        time.sleep(1)
        order = ["direct", "before", "after"]
        for rnd in range(ns.rounds):
            for size, label in sizes:
                # Each round starts with another variant, so that none always runs first.
                for name in order[rnd % 3:] + order[: rnd % 3]:
                    master = procs[order.index(name)].pid
                    cpu = cpu_seconds(master)
                    r = wrk(urls[name], size, None if name == "direct" else auth, ns.duration, ns.connections, tmp)
                    # Worker CPU per request: what the server itself spent, whatever else runs on the machine.
                    r["cpu_us"] = (cpu_seconds(master) - cpu) / max(r["requests"], 1) * 1e6
                    runs.setdefault((label, name), []).append(r)
        # Added latency without queueing: one connection, a fixed low rate, open loop.
        if ns.low_rate:
            for rnd in range(ns.rounds):
                for name in order[rnd % 3:] + order[: rnd % 3]:
                    low.setdefault(name, []).append(
                        open_loop(urls[name], 1024, None if name == "direct" else auth, ns.low_rate, ns.duration))
        # The same with apr1 hashes: what a slower scheme costs.
        htpasswd = Path(plan.env["gateway"]["OBSKIT_GW_SECRETS_DIR"]) / "htpasswd"
        # On stdin: a generated password may start with "-", and stays out of the process list.
        apr1 = subprocess.run(["openssl", "passwd", "-apr1", "-stdin"], input=password + "\n", capture_output=True,
                              text=True, check=True).stdout.strip()
        os.chmod(htpasswd, 0o600)
        htpasswd.write_text(f"{user}:{apr1}\n")
        os.chmod(htpasswd, 0o400)
        cpu = cpu_seconds(procs[2].pid)
        r = wrk(urls["after"], 1024, auth, ns.duration, ns.connections, tmp)
        r["cpu_us"] = (cpu_seconds(procs[2].pid) - cpu) / max(r["requests"], 1) * 1e6
        runs[("1 KB", "apr1")] = [r]
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        syslog.close()
        shutil.rmtree(tmp, ignore_errors=True)

    def median(rs: list[dict]) -> dict:
        import statistics

        return {"rps": statistics.median(r["rps"] for r in rs), "p50": statistics.median(r["p50"] for r in rs),
                "p99": statistics.median(r["p99"] for r in rs), "cpu_us": statistics.median(r["cpu_us"] for r in rs),
                "non2xx": sum(r["non2xx"] for r in rs),
                "errors": "; ".join(r["errors"] for r in rs if r["errors"]),
                "each": " / ".join(f"{r['rps']:.0f}" for r in rs)}

    results = {key: median(rs) for key, rs in runs.items()}

    names = {
        "direct": "direct (plain HTTP to the stub)",
        "before": f"through the gateway before (`{ns.before[:7]}`)",
        "after": "through the gateway after (allowlist, limits after auth)",
        "apr1": "through the gateway after, apr1 hashes instead",
    }
    rows = []
    for _size, label in sizes:
        for name in ("direct", "before", "after"):
            rows.append((label, name, results[(label, name)]))
    rows.append(("1 KB", "apr1", results[("1 KB", "apr1")]))

    model = cpu_model()
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    lines = [
        "# Gateway overhead",
        "",
        f"Machine: {model}, {os.cpu_count()} cores; {nginx_version}; wrk, 1 thread, {ns.connections} keep-alive connections, {ns.duration} s per run;",
        f"{ns.rounds} rounds, each variant in turn (a different one first in each round): medians of the rounds (apr1: one run).",
        "Method: `load/bench/gateway.py`. The rendered gateways (worker_processes auto) in front of a stub upstream",
        "(nginx, 1 worker, discarding the body and answering 204). Direct = wrk straight to the stub over plain HTTP.",
        "Gateway = TLS 1.3, basic auth, the role check, limit_req with limits too high to reject, tenant header.",
        f"Before = the gateway templates at `{ns.before}` (limit_req before auth_basic, the role check as an",
        "auth_request subrequest); after = this tree (an allowlisted route, auth_basic, then a named location with the",
        "role and method check and the credential's limit_req). Both rendered from the same spec and running side by",
        "side on their own ports, measured in this run.",
        "Added = gateway minus direct at the same body size. Server CPU per request = the CPU time (user + system) the",
        "nginx workers of that server used during the run, divided by the requests wrk completed: unlike requests/s",
        "and latency, it depends little on what else the machine runs at the time.",
        "wrk, the gateway and the stub share the same cores, so absolute numbers are a floor.",
        f"The gateway's syslog copy of each access line goes to a UDP listener (as to the collector in the stack): "
        f"{syslog.received:,} datagrams received.",
        f"Load average (1/5/15 min) at the start: {' / '.join(f'{x:.2f}' for x in load_start)}; at the end: "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}, on {os.cpu_count()} cores. The machine was shared with",
        "other work during the run, not quiet: requests/s and latency vary from round to round; server CPU per request",
        "is the steadier comparison.",
        "",
        "Saturation (wrk, closed loop): the added p50 here is mostly queueing at saturation (with "
        f"{ns.connections} connections, latency ~ connections / throughput), so it moves with the machine's load; "
        "the low-rate table below is the latency the gateway adds.",
        "",
        "| body | path | requests/s | p50 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) | server CPU per request (µs) | requests/s per round | non-2xx | socket errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for label, name, r in rows:
        base = results[(label, "direct")]
        added = "-" if name == "direct" else None
        a50 = added or f"{r['p50'] - base['p50']:.2f}"
        a99 = added or f"{r['p99'] - base['p99']:.2f}"
        lines.append(f"| {label} | {names[name]} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {a50} | {a99} "
                     f"| {r['cpu_us']:.0f} | {r['each']} | {r['non2xx']} | {r['errors'] or '-'} |")
    if low:
        import statistics

        def med(name: str, key: str) -> float:
            return statistics.median(r[key] for r in low[name])

        lines += [
            "",
            f"Low rate (open loop): 1 KB pushes at {ns.low_rate}/s on one keep-alive connection for {ns.duration} s, "
            f"{ns.rounds} rounds in turn (medians of the rounds); latency from each request's due time to the end of "
            "its response (a Python client, http.client + ssl: its own cost is in every row; in the gateway rows that includes its side of TLS). "
            "At this rate a request normally ends long before the next is due, so this is the gateway's own latency, "
            "not queueing ('late starts' counts the requests that could not start on time). p99 of a few thousand "
            "requests on a shared machine is noise from other work: compare the p50s.",
            "",
            "| path | requests | p50 (ms) | p90 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) | late starts (> 1 ms) | non-2xx |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name in ("direct", "before", "after"):
            d50, d99 = med("direct", "p50"), med("direct", "p99")
            p50, p90, p99 = med(name, "p50"), med(name, "p90"), med(name, "p99")
            added = ("-", "-") if name == "direct" else (f"{p50 - d50:.2f}", f"{p99 - d99:.2f}")
            lines.append(f"| {names[name]} | {sum(r['requests'] for r in low[name])} | {p50:.2f} | {p90:.2f} | {p99:.2f} "
                         f"| {added[0]} | {added[1]} | {sum(r['late'] for r in low[name])} "
                         f"| {sum(r['non2xx'] for r in low[name])} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if not ns.no_write:
        (HERE / "results" / "gateway.md").write_text(report)


if __name__ == "__main__":
    main()
