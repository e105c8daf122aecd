"""Benchmark: `obskit up` (compose) from nothing to verified, with every image present,
and each service's start-to-healthy time as the engine recorded it.

Run it where a Docker engine answers and the pinned images are present, e.g. on the
private engine:  .ci/engine run python load/bench/compose_up.py [--rounds N]
Writes load/bench/results/compose_up.md (and prints it). Each round is a fresh project
(new secrets, empty volumes) torn down with `down --volumes` afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import platform

HERE = Path(__file__).resolve().parent


def describe() -> str:
    return f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}"


def obskit(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT_")}
    return subprocess.run([sys.executable, "-m", "obskit.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)


def parse_time(text: str) -> float:
    # Docker's RFC 3339 with nanoseconds: keep microseconds.
    head, _, frac = text.rstrip("Z").partition(".")
    frac = (frac + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{frac}+00:00").timestamp()


def service_times(project: str) -> dict[str, float]:
    """service -> seconds from the container's start to its first healthy check (or to
    its exit, for the one-shot job)."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True, check=True).stdout.split()
    out = {}
    for data in json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout):
        service = data["Config"]["Labels"].get("com.docker.compose.service", data["Name"])
        state = data["State"]
        started = parse_time(state["StartedAt"])
        health = state.get("Health")
        if health:
            ok = [parse_time(h["End"]) for h in health.get("Log", []) if h.get("ExitCode") == 0]
            # The log keeps the last 5 checks: a long-healthy service's first success may be gone.
            out[service] = (min(ok) - started) if ok and len(health.get("Log", [])) < 5 else float("nan")
        elif not state["Running"]:
            out[service] = parse_time(state["FinishedAt"]) - started
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    totals, per_service = [], {}
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="obskit-bench-") as tmp:
            folder = Path(tmp)
            project = f"bench-{os.getpid()}-{i}"
            (folder / "obskit.yaml").write_text(f"project: {project}\nenvironments:\n  local:\n    kind: compose\n")
            started = time.monotonic()
            up = obskit(folder, "up", "--json")
            elapsed = time.monotonic() - started
            try:
                if up.returncode != 0:
                    print(up.stdout, up.stderr, file=sys.stderr)
                    return 1
                verify = json.loads(up.stdout)["verify"]
                assert all(o["ok"] for o in verify), verify
                totals.append(elapsed)
                for service, seconds in service_times(f"{project}-local").items():
                    per_service.setdefault(service, []).append(seconds)
                print(f"round {i + 1}: up to verified {elapsed:.1f} s ({len(verify)} checks)", file=sys.stderr)
            finally:
                obskit(folder, "down", "--volumes")
    lines = [
        "# Compose runtime: `obskit up` to verified, images present",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} with `python load/bench/compose_up.py --rounds {args.rounds}` "
        f"on {describe()}, on the private engine (`.ci/engine`: Debian's dockerd 20.10 in a network namespace, "
        "stand-in images under the pinned names). Each round: a fresh project (new secrets, empty volumes).",
        "",
        f"**`obskit up` to verified: median {statistics.median(totals):.1f} s** "
        f"(rounds: {', '.join(f'{t:.1f}' for t in totals)}).",
        "",
        "| service | start to healthy, median (s) | rounds |",
        "|---|---|---|",
    ]
    for service in sorted(per_service):
        values = [v for v in per_service[service] if v == v]
        med = f"{statistics.median(values):.1f}" if values else "n/a"
        rounds = ", ".join(f"{v:.1f}" for v in per_service[service] if v == v) or "n/a"
        lines.append(f"| {service} | {med} | {rounds} |")
    lines += ["", "create-buckets is a one-shot job: its time is start to exit. Services without a "
              "healthcheck (the Mimir replicas, the collector) are probed by the readiness sidecar."]
    text = "\n".join(lines) + "\n"
    (HERE / "results" / "compose_up.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
