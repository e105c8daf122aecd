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


def measure(args: list[str], runs: int, cwd: Path) -> tuple[list[float], list[float], int]:
    """Wall times, CPU times (user + system of the child) and the peak RSS. One warm-up run
    first, not counted (it fills the page cache)."""
    exe = shutil.which("obskit") or sys.exit("obskit is not installed (pip install -e .)")
    times, cpus, peak = [], [], 0
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.Popen([exe, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            sys.exit(f"obskit {' '.join(args)} failed")
        if i == 0:
            continue
        times.append(wall)
        cpus.append(usage.ru_utime + usage.ru_stime)
        peak = max(peak, usage.ru_maxrss)
    return times, cpus, peak


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    ns = parser.parse_args()
    rows = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        # Commands in turn, run after run, so that a busy spell of the machine spreads over all of them.
        samples: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label, _ in COMMANDS}
        peaks: dict[str, int] = {}
        for label, args in COMMANDS:
            measure(args, 0, Path(tmp))  # warm-up
        for _ in range(ns.runs):
            for label, args in COMMANDS:
                times, cpus, peak = measure(args, 1, Path(tmp))
                samples[label][0].extend(times)
                samples[label][1].extend(cpus)
                peaks[label] = max(peaks.get(label, 0), peak)
        for label, _ in COMMANDS:
            times, cpus = samples[label]
            rows.append((label, times, statistics.median(cpus), peaks[label] / 1024))
    load_end = os.getloadavg()
    model = cpu_model()
    fmt = lambda load: " / ".join(f"{x:.2f}" for x in load)  # noqa: E731
    lines = [
        "# CLI start-up and render time",
        "",
        f"Machine: {model}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}.",
        f"Method: each command run {ns.runs} times as a fresh process in an empty folder (embedded default spec),",
        "the commands in turn, after one uncounted warm-up run each; wall time from spawn to exit, the child's CPU",
        "time (user + system) and peak RSS. Script: `load/bench/cli_startup.py`.",
        f"Load average (1/5/15 min) at the start: {fmt(load_start)}; at the end: {fmt(load_end)}, on {os.cpu_count()} "
        "cores. The machine was shared with other work (builds, test runs, containers) during the run, not quiet:",
        "wall times include waiting for a core, so their spread is wide; CPU time is what the command itself costs.",
        "",
        "| command | min (ms) | p10 (ms) | median (ms) | p90 (ms) | max (ms) | median CPU (ms) | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, times, cpu, rss in rows:
        ms = [t * 1000 for t in times]
        lines.append(f"| `{label}` | {min(ms):.0f} | {quantile(ms, 0.1):.0f} | {statistics.median(ms):.0f} | "
                     f"{quantile(ms, 0.9):.0f} | {max(ms):.0f} | {cpu * 1000:.0f} | {rss:.1f} |")
    lines += [
        "",
        "What it depends on: the Python interpreter's start and the modules a command imports (`config show` and",
        "`render` load the spec model, `render` the templates too), whether those files are in the page cache",
        "(warm here), and how many other processes want the cores (wall minus CPU time). On a quiet machine wall",
        "time approaches the CPU time; under load it does not.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if not ns.no_write:
        (HERE / "results" / "cli_startup.md").write_text(report)


if __name__ == "__main__":
    main()
