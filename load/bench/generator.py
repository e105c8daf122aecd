#!/usr/bin/env python3
"""Benchmark: obskit's generator against the other ways of producing OTLP load, on the
same local OTLP/HTTP sink, in one run.

The sink (obskit.loadgen.sink, its own process, plain HTTP on 127.0.0.1) decodes every
request with the official protobuf classes and counts log records and data points. Every
sender runs in a process of its own, and its CPU time is measured there (user + system),
so "items per CPU second" compares the senders' own cost.

Rows:

- obskit generator, 1 worker, asked for far more than it can send (open loop: what it cannot
  start in time is "not sent", which is not a drop): log records with the fast content (a
  pool of 64 records per service), log records with realistic content (every record new),
  metric data points;
- OTel Python SDK, default pipeline: BatchLogRecordProcessor with its defaults (queue 2,048,
  batch 512) + OTLPLogExporter, emitting as fast as one thread can (what drops is the queue
  overflowing);
- OTel Python SDK, tuned: the same with a 500,000-record queue and batches of 2,000;
- a plain protobuf (pb2) encoder: ExportLogsServiceRequest objects of 2,000 records built
  with the opentelemetry-proto classes, serialized and posted back to back;
- telemetrygen (the collector project's load generator, Go), logs and metrics, unthrottled,
  1 worker, batches of 2,000 (it sends the same body for every record).

The SDK and pb2 rows draw every record's body from the same generator of realistic text
as the obskit realistic row (obskit.loadgen.content), so those rows compare like for like.

    python load/bench/generator.py [--duration 10] [--no-write]

Writes load/bench/results/generator.md unless --no-write. telemetrygen must be on PATH
(build it with `GOBIN=/opt/obskit-bin go install
github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.160.0`);
without it, its rows say so.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from machine import cpu_model  # noqa: E402

USER = "bench-write"
AUTH = "Basic YmVuY2gtd3JpdGU6eA=="  # bench-write:x; the sink counts by user
SHAPE = "mixed"
BODY_BYTES = 120
TELEMETRYGEN_VERSION = "v0.160.0"


def counts(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/counts", timeout=10) as r:
        return json.loads(r.read()).get(USER, {"logs": 0, "points": 0})


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system


# --------------------------------------------------------------------------- rows (each in its own process)


def row_generator(port: int, signal: str, variety: str, duration: float) -> dict:
    from obskit.loadgen import report as report_mod
    from obskit.loadgen.run import run
    from obskit.loadgen.scenario import Scenario
    from obskit.loadgen.worker import Target

    profile = [{"at": 0, "rate": 5_000_000}]
    scenario = Scenario.model_validate({
        "name": f"bench-{signal}", "duration": f"{duration}s", "workers": 1, "services": 50,
        "series_per_service": 200, "batch_logs": 2000, "batch_points": 5000, "body_bytes": BODY_BYTES,
        "max_in_flight": 4, "log_content": {"variety": variety, "shape": SHAPE},
        "tenants": [{"tenant": "bench", **({"logs": profile} if signal == "logs" else {"points": profile})}],
    })
    key = "logs" if signal == "logs" else "points"
    before = counts(port)
    live = run(scenario, Target(base_url=f"http://127.0.0.1:{port}", auth={"bench": AUTH}),
               tenants={None: "bench", "bench": "bench"})
    received = counts(port)[key] - before[key]
    t = report_mod.build(live, scenario, "sink", None)["totals"][f"bench/{signal}"]
    return {"offered": t["offered"], "received": received, "not_sent": t["not_sent"],
            "cpu_s": sum(live.cpu_seconds.values()), "wall_s": duration, "gzip_ratio": t["bytes"]["gzip_ratio"]}


def _bodies():
    from obskit.loadgen.content import BodyMaker

    maker = BodyMaker("svc-00001", random.Random(7), SHAPE, BODY_BYTES)
    return maker.make


def row_sdk(port: int, tuned: bool, duration: float) -> dict:
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    make = _bodies()
    before = counts(port)
    cpu0, wall0 = cpu_now(), time.time()
    exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}/v1/logs", headers={"Authorization": AUTH})
    provider = LoggerProvider(resource=Resource.create({"service.name": "bench-sdk"}))
    options = {"max_queue_size": 500_000, "max_export_batch_size": 2000} if tuned else {}
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, **options))
    logger = provider.get_logger("bench")
    emitted, end = 0, time.time() + duration
    while time.time() < end:
        for _ in range(100):
            sev_num, sev_text, body, method, route, status = make()
            logger.emit(LogRecord(timestamp=time.time_ns(), body=body, severity_number=SeverityNumber(sev_num),
                                  severity_text=sev_text,
                                  attributes={"http.request.method": method, "http.route": route,
                                              "http.response.status_code": status}))
        emitted += 100
    provider.shutdown()  # flushes what the queue still holds
    cpu, wall = cpu_now() - cpu0, time.time() - wall0
    time.sleep(1)
    return {"offered": emitted, "received": counts(port)["logs"] - before["logs"], "not_sent": 0, "cpu_s": cpu,
            "wall_s": wall}


def row_pb2(port: int, duration: float) -> dict:
    import http.client

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    make = _bodies()
    before = counts(port)
    cpu0, wall0 = cpu_now(), time.time()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/x-protobuf", "Authorization": AUTH}
    sent, end, sample = 0, time.time() + duration, None
    while time.time() < end:
        # The fast way to fill repeated message fields: .add() builds each message in place
        # (constructing LogRecord(...) objects and copying them in costs about twice as much).
        request = ExportLogsServiceRequest()
        for s in range(8):
            rl = request.resource_logs.add()
            kv = rl.resource.attributes.add()
            kv.key, kv.value.string_value = "service.name", f"svc-{s:05d}"
            sl = rl.scope_logs.add()
            sl.scope.name = "bench"
            for _ in range(250):
                sev_num, sev_text, text, method, route, status = make()
                rec = sl.log_records.add()
                rec.time_unix_nano = time.time_ns()
                rec.severity_number = sev_num
                rec.severity_text = sev_text
                rec.body.string_value = text
                a = rec.attributes.add()
                a.key, a.value.string_value = "http.request.method", method
                a = rec.attributes.add()
                a.key, a.value.string_value = "http.route", route
                a = rec.attributes.add()
                a.key, a.value.int_value = "http.response.status_code", status
        body = request.SerializeToString()
        sample = sample or body
        conn.request("POST", "/v1/logs", body, headers)
        conn.getresponse().read()
        sent += 2000
    cpu, wall = cpu_now() - cpu0, time.time() - wall0
    return {"offered": sent, "received": counts(port)["logs"] - before["logs"], "not_sent": 0, "cpu_s": cpu,
            "wall_s": wall, "gzip_ratio": round(len(sample) / len(gzip.compress(sample, 6)), 2)}


def row_telemetrygen(port: int, signal: str, duration: float) -> dict:
    exe = shutil.which("telemetrygen")
    if not exe:
        return {"missing": "telemetrygen is not on PATH"}
    key = "logs" if signal == "logs" else "points"
    before = counts(port)
    cmd = [exe, signal, "--otlp-http", "--otlp-endpoint", f"127.0.0.1:{port}", "--otlp-insecure",
           "--duration", f"{duration:g}s", "--rate", "0", "--workers", "1", "--batch-size", "2000",
           "--otlp-header", f'Authorization="{AUTH}"']
    if signal == "logs":
        cmd += ["--body", "GET /api/orders/12345 200 37ms service=svc-00001 request_id=0123456789abcdef user_id=u123"]
    wall0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - wall0
    time.sleep(1)
    received = counts(port)[key] - before[key]
    generated = sum(int(n) for n in re.findall(rf'"{signal}": (\d+)', output))
    version = _module_version(exe)
    return {"offered": generated or received, "received": received, "not_sent": 0,
            "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "version": version,
            "note": "" if generated else "generated count not reported; offered = received"}


def _module_version(exe: str) -> str:
    """The module version a Go binary was built from (`go version -m`), if go is here."""
    try:
        out = subprocess.run(["go", "version", "-m", exe], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown version"
    m = re.search(r"^\s*mod\s+\S+\s+(v\S+)", out, re.M)
    return m.group(1) if m else "unknown version"


def _in_process(fn, *args) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--no-write", action="store_true")
    ns = ap.parse_args()
    from obskit.loadgen.sink import serve_forever
    from obskit.loopback import free_port

    if not shutil.which("telemetrygen"):
        print("telemetrygen is not on PATH: its rows will be missing. Build it with\n"
              f"  GOBIN=/opt/obskit-bin go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/"
              f"telemetrygen@{TELEMETRYGEN_VERSION}\nand put /opt/obskit-bin on PATH.", file=sys.stderr)
    port = free_port()
    sink = multiprocessing.get_context("spawn").Process(target=serve_forever, args=(port,), daemon=True)
    sink.start()
    for _ in range(100):
        try:
            counts(port)
            break
        except OSError:
            time.sleep(0.1)
    d = ns.duration
    load_start = os.getloadavg()
    rows = [
        ("obskit generator, fast content", "log records", "64 records per service, cycled",
         row_generator(port, "logs", "fast", d)),
        ("obskit generator, realistic content", "log records", "every record new",
         row_generator(port, "logs", "realistic", d)),
        ("OTel Python SDK, default pipeline", "log records", "every record new", _in_process(row_sdk, port, False, d)),
        ("OTel Python SDK, tuned (queue 500k, batch 2000)", "log records", "every record new",
         _in_process(row_sdk, port, True, d)),
        ("plain pb2 encoder", "log records", "every record new", _in_process(row_pb2, port, d)),
        ("telemetrygen", "log records", "one body for all", row_telemetrygen(port, "logs", d)),
        ("obskit generator", "metric data points", "gauge series", row_generator(port, "metrics", "fast", d)),
        ("telemetrygen", "metric data points", "one gauge", row_telemetrygen(port, "metrics", d)),
    ]
    sink.terminate()
    report = render(rows, d, load_start, os.getloadavg())
    print(report)
    if not ns.no_write:
        (HERE / "results" / "generator.md").write_text(report)


def render(rows, duration: float, load_start=(0.0, 0.0, 0.0), load_end=(0.0, 0.0, 0.0)) -> str:
    import importlib.metadata as md

    per_core = {}
    for sender, items, _, r in rows:
        if "missing" not in r:
            per_core[(sender, items)] = r["received"] / r["cpu_s"]
    realistic = per_core.get(("obskit generator, realistic content", "log records"))
    fast = per_core.get(("obskit generator, fast content", "log records"))
    tg = next((r.get("version") for s, _, _, r in rows if s == "telemetrygen" and "version" in r), None)
    lines = [
        "# Generator throughput: obskit's generator, the OTel SDK, pb2 and telemetrygen, one run",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores (shared with the sink and other work); "
        f"Python {platform.python_version()}; opentelemetry-sdk {md.version('opentelemetry-sdk')}; "
        f"telemetrygen {tg or 'missing'}; {duration:g} s per row.",
        "Method: `load/bench/generator.py`. One local OTLP/HTTP sink (obskit.loadgen.sink, its own process, plain",
        "HTTP on 127.0.0.1) decodes every request with the official protobuf classes and counts. Each sender",
        "runs in its own process; items per CPU second = items received by the sink / the sender's own CPU",
        "seconds (user + system). Dropped = offered - received. The generator is asked for far more than it",
        "can send, so most of its schedule is \"not sent\" (it is the bottleneck, by design here): that is",
        "not a drop. Log bodies: realistic mixed text, JSON and stack traces (obskit.loadgen.content) of at",
        f"least {BODY_BYTES} bytes, the same generator for the obskit realistic, SDK and pb2 rows.",
        "The pb2 row fills its requests with .add() (the fast way), not by constructing and copying messages.",
        f"Load average (1/5/15 min) at the start: {' / '.join(f'{x:.2f}' for x in load_start)}; at the end: "
        f"{' / '.join(f'{x:.2f}' for x in load_end)}, on {os.cpu_count()} cores. The machine was shared with other "
        "work (builds, test runs) during this run, not quiet: items/s (wall) moves with that; items per CPU second "
        "less so.",
        "",
        "| sender | items | content | offered | received | dropped | items/s (wall) | items per CPU second "
        "| realistic generator vs this |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for sender, items, content, r in rows:
        if "missing" in r:
            lines.append(f"| {sender} | {items} | {content} | {r['missing']} | | | | | |")
            continue
        dropped = r["offered"] - r["received"]
        pc = per_core[(sender, items)]
        ratio = f"{realistic / pc:.1f}x" if realistic and items == "log records" else ""
        lines.append(f"| {sender} | {items} | {content} | {r['offered']:,} | {r['received']:,} | "
                     f"{dropped:,} ({dropped / max(1, r['offered']):.1%}) | {r['received'] / r['wall_s']:,.0f} | "
                     f"{pc:,.0f} | {ratio} |")
    gz = {f"{s} ({i})": r.get("gzip_ratio") for s, i, _, r in rows if r.get("gzip_ratio")}
    pb2 = per_core.get(("plain pb2 encoder", "log records"))
    tuned = per_core.get(("OTel Python SDK, tuned (queue 500k, batch 2000)", "log records"))
    lines += ["", "Gzip ratio (level 6) of the request bodies: " + ", ".join(f"{s} {v}x" for s, v in gz.items()) + "."]
    tgl = per_core.get(("telemetrygen", "log records"))
    if realistic and pb2 and tuned:
        lines += ["", f"The fair ratio for logs: with the same realistic content and no drops, the generator does "
                      f"{realistic / pb2:.1f}x a plain pb2 encoder and {realistic / tuned:.1f}x a tuned SDK pipeline "
                      f"per CPU second. Most of its cost is making the content: the fast content is another "
                      f"{fast / realistic:.1f}x, but compresses {gz.get('obskit generator, fast content (log records)')}x "
                      f"instead of {gz.get('obskit generator, realistic content (log records)')}x, so byte figures from it flatter the stack. "
                      f"The default SDK's drops come from its 2,048-record queue overflowing under a flat-out emit "
                      f"loop, not from its encoding; tuned, it drops nothing."]
    if tgl and fast:
        lines += ["", f"telemetrygen sends one body for every record, so its like for like is the fast content: "
                      f"the generator does {fast / tgl:.1f}x telemetrygen per CPU second there. With every record "
                      f"new it does {realistic / tgl:.1f}x what telemetrygen does with one body."]
    lines += ["", "Goals: at least 80,000 log records/s and 200,000 metric data points/s per generator core, with zero drops."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
