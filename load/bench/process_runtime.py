"""Benchmark: the process runtime, from nothing to verified, and end-to-end freshness.

    python load/bench/process_runtime.py [--probes 40] [--out load/bench/results/process_runtime.md]

1. ``obskit up --runtime process`` in a fresh project folder (new secrets, empty data):
   wall seconds until verify has passed, and each service's start-to-ready seconds (as the
   runtime records them: every readiness probe passing, for Loki a query).
2. Freshness through the real collector: an application (the OpenTelemetry SDK) sends a log
   record with a unique marker to the collector's OTLP/HTTP intake; the collector batches it
   and exports it through the gateway (TLS, auth, tenant) to Loki; the clock stops when the
   marker is queryable through the gateway as the tenant's reader. The same for a metric
   sample in Mimir when Mimir is installed. p50 and p99 over ``--probes`` markers.
3. ``obskit down --volumes``.

Components that are not installed (Grafana, Mimir) are left out and the report says so.
Everything runs on 127.0.0.1; the probes are bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent


def obskit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("obskit")
    cmd = [exe] if exe else [sys.executable, "-m", "obskit.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")}
    return subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probes", type=int, default=40, help="freshness markers per signal")
    ap.add_argument("--out", default=str(HERE / "results" / "process_runtime.md"))
    args = ap.parse_args()

    from obskit.loopback import free_block

    absent = [p for p in ("grafana", "mimir") if shutil.which(p) is None]
    root = Path(tempfile.mkdtemp(prefix="obskit-bench-"))
    root.chmod(0o755)
    sets = ["--set", f"environments.process.base_port={free_block()}", "--set", "collector.batch_timeout=200ms"]
    if absent:
        sets += ["--set", f"environments.process.skip=[{','.join(absent)}]"]
    try:
        t0 = time.monotonic()
        up = obskit("up", "--runtime", "process", "--json", *sets, cwd=root)
        to_verified = time.monotonic() - t0
        if up.returncode != 0:
            print(up.stderr, file=sys.stderr)
            return 1
        report = json.loads(up.stdout)
        state = json.loads((root / ".obskit" / "run" / "process" / "state.json").read_text())["services"]
        ready = {name: s.get("ready_after") for name, s in state.items()}
        logs, metrics = freshness(root, sets, args.probes, "mimir" not in absent)
    finally:
        obskit("down", "--runtime", "process", "--volumes", *sets, cwd=root)
        shutil.rmtree(root, ignore_errors=True)

    lines = [
        "# Process runtime: start to verified, and end-to-end freshness",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} with `python load/bench/process_runtime.py --probes {args.probes}` on "
        f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}.",
        f"Left out (not installed here): {', '.join(absent) or 'nothing'}.",
        "",
        f"**`obskit up --runtime process` to verified: {to_verified:.1f} s** (fresh folder: new secrets, "
        f"initdb, empty data; verify: {sum(1 for v in report['verify'] if v['ok'])}/{len(report['verify'])} checks passed).",
        "",
        "| service | start to ready (s) |",
        "|---|---|",
        *[f"| {name} | {secs if secs is not None else '-'} |" for name, secs in ready.items()],
        "",
        "Freshness: from the SDK's emit call to queryable through the gateway (collector batch timeout 200 ms).",
        "",
        "| signal | path | probes | p50 (s) | p99 (s) | max (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, path, values in (("logs", "app -> collector -> gateway -> Loki", logs),
                               ("metrics", "app -> collector -> gateway -> Mimir", metrics)):
        if values:
            lines.append(f"| {name} | {path} | {len(values)} | {statistics.median(values):.2f} | "
                         f"{percentile(values, 0.99):.2f} | {max(values):.2f} |")
        else:
            lines.append(f"| {name} | {path} | 0 | not measured | (Mimir not installed here) | |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def freshness(root: Path, sets: list[str], probes: int, with_metrics: bool) -> tuple[list[float], list[float]]:
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    from obskit.project import Project
    from obskit.runtime import for_env
    from obskit.spec.load import load_spec
    from obskit.verify import query_logs, query_metrics

    overrides = [sets[i + 1] for i in range(0, len(sets), 2)]
    project = Project.of(load_spec(None, environ={}, sets=overrides), root=root)
    rt = for_env(project, "process")
    ep = rt.endpoints()
    tenant = ep.tenants[0]
    otlp = f"http://127.0.0.1:{rt.processes.ports['otelcol']['http']}"
    resource = Resource.create({"service.name": "freshness-probe", "service.instance.id": "bench"})
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{otlp}/v1/logs"),
                                                              schedule_delay_millis=50))
    logger = provider.get_logger("bench")
    logs: list[float] = []
    for _ in range(probes):
        marker = uuid.uuid4().hex
        start = time.monotonic()
        logger.emit(LogRecord(timestamp=time.time_ns(), body=f"freshness {marker}", severity_number=SeverityNumber.INFO))
        provider.force_flush()
        while time.monotonic() - start < 30:
            if query_logs(ep, tenant, f'{{service_name="freshness-probe"}} |= "{marker}"', since_seconds=120):
                logs.append(time.monotonic() - start)
                break
            time.sleep(0.05)
    provider.shutdown()
    metrics: list[float] = []
    if with_metrics:
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{otlp}/v1/metrics"), export_interval_millis=60000)
        meters = MeterProvider(resource=resource, metric_readers=[reader])
        gauge = meters.get_meter("bench").create_counter("freshness_probe")
        for i in range(probes):
            label = uuid.uuid4().hex[:12]
            start = time.monotonic()
            gauge.add(1, {"probe": label})
            meters.force_flush()
            while time.monotonic() - start < 30:
                if query_metrics(ep, tenant, f'freshness_probe{{probe="{label}"}}'):
                    metrics.append(time.monotonic() - start)
                    break
                time.sleep(0.05)
        meters.shutdown()
    return logs, metrics


if __name__ == "__main__":
    sys.exit(main())
