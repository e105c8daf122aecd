#!/usr/bin/env python3
"""Benchmark: a scenario through the real gateway, with the default limits.

A scenario (default `noisy-neighbour`), its times scaled to ``--duration``, run by obskit's
generator through the real rendered nginx gateway (TLS, per-tenant auth, the default
per-tenant limit of 50 requests/s, burst 200), with Loki's and every Mimir replica's port
answered by one counting sink (obskit.loadgen.sink) on 127.0.0.1. No Docker: the backends
are the sink, so this shows what the gateway and its limits do, not Loki or Mimir.

- noisy-neighbour: the quiet tenant (apps) sends steadily for the whole run; sandbox floods
  in the second half at 6 times its limit. The report compares apps' accepted rate and
  latency before and during the flood (the scenario's `isolation` windows).
- ramp, spike: where offered parts from accepted, and what the 429s and their retries do
  to latency measured from due time.

    python load/bench/through_gateway.py [--scenario noisy-neighbour] [--duration 60] [--no-write]

Writes load/bench/results/gateway-<scenario>.md and load/bench/results/gateway-<scenario>/*.png
unless --no-write. Needs nginx.
"""

from __future__ import annotations

import argparse
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
        for w in ("baseline", "during"):
            iso[w] = [f"{float(str(x).rstrip('s')) * k:g}s" for x in iso[w]]
    return Scenario.model_validate(data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="noisy-neighbour")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--no-write", action="store_true")
    ns = ap.parse_args()
    if not shutil.which("nginx"):
        sys.exit("nginx is not on PATH: apt-get install nginx")

    from obskit import loopback
    from obskit.loadgen import report as report_mod
    from obskit.loadgen.api import target_for, tenant_map
    from obskit.loadgen.run import run
    from obskit.loadgen.scenario import load_scenario
    from obskit.loadgen.sink import Sink
    from obskit.render import render, write_environment
    from obskit.spec.load import load_spec
    from obskit.tools import nginx

    sc = scaled(load_scenario(ns.scenario), ns.duration)
    tmp = Path(tempfile.mkdtemp(prefix="obskit-isolation-"))
    resolved = load_spec(None, environ={}, use_default_file=False)
    write_environment(render(resolved, "local"), tmp / "env")
    plan = loopback.plan(resolved.spec, tmp / "env", tmp / "work")
    sink = Sink([plan.ports["loki"]["http"], *[plan.ports[r]["http"] for r in resolved.spec.mimir_replicas]]).start()
    prepared = nginx.prepare(plan.rendered / "configs" / "gateway", plan.env["gateway"])
    ca = tmp / "ca.pem"
    ca.write_text(plan.secrets["gateway-ca-cert"])
    server = nginx.Server(prepared.conf).start()
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
        live = run(sc, target, tenants=tenants, workers=2)
    finally:
        server.stop()
        sink.stop()
    limits = {t.name: t.limits.model_dump() for t in resolved.spec.tenants}
    report = report_mod.build(live, sc, "nginx gateway -> counting sink (127.0.0.1)", None, limits)
    text = report_mod.summary(report)
    print(text)
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
        f"Machine: {cpu_model()}, {os.cpu_count()} cores (shared with the generator, nginx, the sink and other work); "
        f"Python {platform.python_version()}; {ns.duration:g} s run (the scenario's times scaled to it), "
        "2 generator workers.",
        f"Method: `load/bench/through_gateway.py --scenario {sc.name}` runs `load/scenarios/{sc.name}.yaml` through the",
        "rendered gateway with the default limits (50 requests/s, burst 200 per tenant); Loki's and Mimir's ports",
        "are one counting sink, so this shows the gateway and its limits, not the backends. Latency is from when",
        "each batch was due.",
        "",
    ]
    for tenant, t in report["tenants"].items():
        if "times_limit" in t:
            lines.append(f"- {tenant}: {t['requests_per_s']} requests/s offered over the {t['active_seconds']} s it had "
                         f"load, {t['times_limit']}x its limit of {t['limit_requests_per_s']}/s.")
    iso = report["isolation"]
    if iso:
        lines += ["", "| apps, window | signal | accepted/s | p50 ms | p99 ms |", "|---|---|---:|---:|---:|"]
        for which in ("baseline", "during"):
            w = iso["windows"][which]
            for signal in ("logs", "metrics"):
                m = w[signal]
                lines.append(f"| {which} ({w['from_s']:g}-{w['to_s']:g} s) | {signal} | {m['accepted_per_s']:,.0f} | "
                             f"{m['p50_ms']:.1f} | {m['p99_ms']:.1f} |")
        lines += ["", "Change during the flood: " + ", ".join(f"{k} {v:+.1%}" for k, v in iso["changes"].items())
                  + f" -> {'within' if iso['within_tolerance'] else 'NOT within'} {iso['tolerance']:.0%}."]
    lines += ["", "```", text, "```", "",
              "Plots: " + ", ".join(f"`results/{name}/{p.name}`" for p in files if p.suffix == ".png")]
    (HERE / "results" / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
