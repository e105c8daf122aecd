#!/usr/bin/env python3
"""Benchmark: a scenario through the real gateway, with the default limits.

A scenario (default `noisy-neighbour`), its times scaled to ``--duration``, run by obskit's
generator through the real rendered nginx gateway (TLS, per-tenant auth, the default
per-tenant limit of 50 requests/s, burst 200), with Loki's and every Mimir replica's port
answered by one counting sink (obskit.loadgen.sink) on 127.0.0.1. No Docker: the backends
are the sink, so this shows what the gateway and its limits do, not Loki or Mimir.

- noisy-neighbour: alternating rounds of a baseline run (sandbox at exactly its limit) and a
  flood run (sandbox at 6x its limit); the quiet tenant's accepted rate and latency are
  compared over all rounds (the report's verdict), each round on its own, and consecutive
  baseline runs with each other (the machine's own drift).
- ramp, spike: where offered parts from accepted, and what the 429s and their retries do
  to latency measured from due time.

    python load/bench/through_gateway.py [--scenario noisy-neighbour] [--duration S] [--rounds N] [--no-write]

Writes load/bench/results/gateway-<scenario>.md and load/bench/results/gateway-<scenario>/*.png
unless --no-write. Needs nginx.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from machine import cpu_model  # noqa: E402


def scaled(sc, duration: float):
    """The scenario with every time scaled to ``duration`` (the flood still starts half way)."""
    from obskit.loadgen.scenario import Scenario

    k = duration / sc.duration_s
    data = sc.model_dump()
    data["duration"] = f"{duration:g}s"
    for t in data["tenants"]:
        for sig in ("logs", "points"):
            t[sig] = [{"at": f"{float(str(p['at']).rstrip('s')) * k:g}s", "rate": p["rate"]} for p in t[sig]]
    iso = data.get("isolation")
    if iso:
        iso["window"] = [f"{float(str(x).rstrip('s')) * k:g}s" for x in iso["window"]]
    return Scenario.model_validate(data)


def iso_conf(rows) -> str:
    return f"{rows[0][1]['confidence']:.0%}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="noisy-neighbour")
    ap.add_argument("--duration", type=float, help="seconds (default: the scenario's)")
    ap.add_argument("--rounds", type=int, help="isolation scenarios: alternating (baseline, flood) rounds "
                    "(default: the scenario's); each round is also compared on its own, and consecutive baseline "
                    "runs with each other, which shows the machine's own drift")
    ap.add_argument("--no-write", action="store_true")
    ns = ap.parse_args()
    if not shutil.which("nginx"):
        sys.exit("nginx is not on PATH: apt-get install nginx")

    from obskit import loopback
    from obskit.loadgen import report as report_mod
    from obskit.loadgen.api import target_for, tenant_map
    from obskit.loadgen.isolation import baseline_scenario, compare
    from obskit.loadgen.run import run
    from obskit.loadgen.scenario import load_scenario
    from obskit.loadgen.sink import serve_forever
    from obskit.render import render, write_environment
    from obskit.spec.load import load_spec
    from obskit.tools import nginx

    sc = load_scenario(ns.scenario)
    duration = ns.duration or sc.duration_s
    sc = scaled(sc, duration)
    tmp = Path(tempfile.mkdtemp(prefix="obskit-isolation-"))
    resolved = load_spec(None, environ={}, use_default_file=False)
    limits = {t.name: t.limits.model_dump() for t in resolved.spec.tenants}
    write_environment(render(resolved, "local"), tmp / "env")
    plan = loopback.plan(resolved.spec, tmp / "env", tmp / "work")
    # The sink in a process of its own: in this one it would share the interpreter lock with
    # the coordinator, which a real backend does not.
    sink_ports = [plan.ports["loki"]["http"], *[plan.ports[r]["http"] for r in resolved.spec.mimir_replicas]]
    sink = multiprocessing.get_context("spawn").Process(target=serve_forever, args=(sink_ports,), daemon=True)
    sink.start()
    prepared = nginx.prepare(plan.rendered / "configs" / "gateway", plan.env["gateway"])
    ca = tmp / "ca.pem"
    ca.write_text(plan.secrets["gateway-ca-cert"])
    server = nginx.Server(prepared.conf).start()
    baselines: list = []
    floods: list = []
    try:
        import requests

        base = f"https://localhost:{plan.ports['gateway']['https']}"
        for _ in range(100):
            try:
                if requests.get(f"{base}/nginx-health", verify=str(ca), timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        spec_tenants = [t.name for t in resolved.spec.tenants]
        tenants = tenant_map(sc, spec_tenants)
        target = target_for(loopback.endpoints(plan, str(ca)), list(dict.fromkeys(tenants.values())))
        if sc.isolation is not None:
            if ns.rounds:
                sc = sc.model_copy(update={"isolation": sc.isolation.model_copy(update={"rounds": ns.rounds})})
            plain = baseline_scenario(sc, tenants, limits)
            for i in range(sc.isolation.rounds):
                print(f"round {i + 1}/{sc.isolation.rounds}: baseline run, then flood run ({duration:g} s each)",
                      file=sys.stderr)
                baselines.append(run(plain, target, tenants=tenants, workers=2))
                floods.append(run(sc, target, tenants=tenants, workers=2))
        else:
            floods.append(run(sc, target, tenants=tenants, workers=2))
    finally:
        server.stop()
        sink.terminate()
        sink.join(10)
    live = floods[-1]
    report = report_mod.build(live, sc, "nginx gateway -> counting sink (127.0.0.1)", None, limits,
                              baseline=(baselines, floods) if baselines else None)
    text = report_mod.summary(report)
    print(text)
    rows = []
    if sc.isolation is not None:
        one = sc.model_copy(update={"isolation": sc.isolation.model_copy(update={"rounds": 1})})
        rows.append((f"all {len(floods)} rounds pooled (the report's verdict)", report["isolation"]))
        for i, (b, f) in enumerate(zip(baselines, floods), 1):
            rows.append((f"round {i} alone: flood run vs its baseline run", compare([b], [f], one, limits)))
        for i in range(1, len(baselines)):
            rows.append((f"drift: baseline run {i + 1} vs baseline run {i}", compare([baselines[i - 1]], [baselines[i]],
                                                                                     one, limits)))
        for label, iso in rows:
            print(label + ": " + ", ".join(f"{k} {v['change']:+.1%}" for k, v in iso["judged"].items()
                                           if v["change"] is not None) + f" -> {iso['verdict']}")
    if ns.no_write:
        return
    name = f"gateway-{sc.name}"
    out = HERE / "results" / name
    files = report_mod.write(report, out)
    (out / "report.json").unlink()  # the numbers that matter are in the markdown; the JSON is large
    (out / "freshness.png").unlink()  # no backend here: nothing to probe
    files = [p for p in files if p.exists()]
    lines = [
        f"# {sc.name} through the gateway into a counting sink",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores (shared by the generator, nginx and the sink); "
        f"Python {platform.python_version()}; {duration:g} s per run, 2 generator workers.",
        f"Method: `load/bench/through_gateway.py --scenario {sc.name}` runs `load/scenarios/{sc.name}.yaml` through the",
        "rendered gateway with the default limits (50 requests/s, burst 200 per tenant); Loki's and Mimir's ports",
        "are one counting sink in a process of its own, so this shows the gateway and its limits, not the backends.",
        "Latency is from when each batch was due.",
        "",
    ]
    for tenant, t in report["tenants"].items():
        if "times_limit" in t:
            lines.append(f"- {tenant}: {t['requests_per_s']} requests/s offered over the {t['active_seconds']} s it had "
                         f"load, {t['times_limit']}x its limit of {t['limit_requests_per_s']}/s.")
    if rows:
        a, b = sc.isolation.window_s()
        lines += ["", f"Each round is a baseline run (sandbox at its limit) and then a flood run (sandbox at 6x); the "
                      f"quiet tenant's {a:g}-{b:g} s are compared, its latency over both signals, with a "
                      f"{iso_conf(rows)} bootstrap interval for each change. The drift rows compare two baseline "
                      "runs, which differ in nothing but time.", "",
                  "| comparison | logs accepted/s | metrics accepted/s | latency p50 | latency p90 | latency p99 | verdict |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for label, iso in rows:
            j = iso["judged"]
            cells = [f"{j[k]['change']:+.1%}" for k in ("logs accepted_per_s", "metrics accepted_per_s")]
            for k in ("latency p50_ms", "latency p90_ms", "latency p99_ms"):
                lo, hi = j[k]["interval"]
                cells.append(f"{j[k]['change']:+.1%} ({lo:+.1%} to {hi:+.1%})")
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {iso['verdict']} {iso['tolerance']:.0%} |")
    lines += ["", "As `obskit load` reports it (the last flood run's totals; isolation over every round):", "", "```", text, "```", "",
              "Plots (the last flood run): " + ", ".join(f"`results/{name}/{p.name}`" for p in files
                                                         if p.suffix == ".png")]
    (HERE / "results" / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
