#!/usr/bin/env python3
"""Benchmark: how fast the CLI answers, and how long a full render takes.

Runs each command N times as a fresh process (what a user feels), reports min, median
and max wall time, and the peak RSS of the child (ru_maxrss). Writes a Markdown table
to load/bench/results/cli_startup.md unless --no-write.

    python load/bench/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent
COMMANDS = [
    ("obskit --help", ["--help"]),
    ("obskit --version", ["--version"]),
    ("obskit config show --json", ["config", "show", "--json"]),
    ("obskit render (embedded default)", ["render"]),
]


def measure(args: list[str], runs: int, cwd: Path) -> tuple[list[float], int]:
    exe = shutil.which("obskit") or sys.exit("obskit is not installed (pip install -e .)")
    times, peak = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen([exe, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        peak = max(peak, usage.ru_maxrss)
        if status != 0:
            sys.exit(f"obskit {' '.join(args)} failed")
    return times, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    ns = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, args in COMMANDS:
            times, peak = measure(args, ns.runs, Path(tmp))
            rows.append((label, min(times), statistics.median(times), max(times), peak / 1024))
    model = cpu_model()
    lines = [
        "# CLI start-up and render time",
        "",
        f"Machine: {model}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}.",
        f"Method: each command run {ns.runs} times as a fresh process in an empty folder (embedded default spec);",
        "wall time from spawn to exit; peak RSS of the child. Script: `load/bench/cli_startup.py`.",
        "",
        "| command | min (ms) | median (ms) | max (ms) | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, lo, med, hi, rss in rows:
        lines.append(f"| `{label}` | {lo * 1000:.0f} | {med * 1000:.0f} | {hi * 1000:.0f} | {rss:.1f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if not ns.no_write:
        (HERE / "results" / "cli_startup.md").write_text(report)


if __name__ == "__main__":
    main()
