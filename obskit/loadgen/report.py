"""The run's report: JSON with every number, PNG plots, and a one-screen summary."""

from __future__ import annotations

import json
import math
from pathlib import Path


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def build(live, scenario, target_label: str, backend: dict | None) -> dict:
    keys = sorted(live.totals)
    totals = {}
    for key in keys:
        t = live.totals[key]
        rejected = sum(t["rejected"].values())
        lat = [x for b in live.timeline.get(key, {}).values() for x in b["latency_ms"]]
        totals[key] = {
            **t,
            "rejected_total": rejected,
            "balanced": t["offered"] == t["accepted"] + rejected + t["failed"],
            "latency_ms": {"p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
                           "max": max(lat) if lat else None, "requests": len(lat)},
            "accepted_per_s": round(t["accepted"] / scenario.duration_s, 1),
        }
    timeline = []
    for key in keys:
        for sec, b in sorted(live.timeline.get(key, {}).items()):
            timeline.append({
                "t": sec, "key": key, "offered": b["offered"], "accepted": b["accepted"],
                "rejected": b["rejected"], "failed": b["failed"], "requests": len(b["latency_ms"]),
                "p50_ms": percentile(b["latency_ms"], 50), "p95_ms": percentile(b["latency_ms"], 95),
                "p99_ms": percentile(b["latency_ms"], 99),
            })
    cpu = sum(live.cpu_seconds.values())
    items = sum(t["offered"] for t in live.totals.values())
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "run_id": live.run_id,
        "target": target_label,
        "duration_s": scenario.duration_s,
        "workers": live.workers,
        "lost_workers": live.lost_workers,
        "generator_cpu_seconds": round(cpu, 3),
        "items_per_cpu_second": round(items / cpu) if cpu else None,
        "totals": totals,
        "balanced": all(t["balanced"] for t in totals.values()),
        "timeline": timeline,
        "freshness": {
            signal: {"samples": samples,
                     "p50_s": percentile([s["seconds"] for s in samples if s["seconds"] is not None], 50),
                     "max_s": max((s["seconds"] for s in samples if s["seconds"] is not None), default=None),
                     "not_visible": sum(1 for s in samples if s["seconds"] is None)}
            for signal, samples in live.freshness.items()
        },
        "backend": backend or {"measured": False, "reason": "no backend to query"},
    }


def write(report: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    written = [path]
    try:
        written += plots(report, out_dir)
    except ImportError:
        report["plots"] = "skipped: matplotlib is not installed (pip install 'obskit[load]')"
        path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return written


def plots(report: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(report["totals"])
    by_key = {k: [r for r in report["timeline"] if r["key"] == k] for k in keys}
    out = []

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for k in keys:
        rows = by_key[k]
        ax.plot([r["t"] for r in rows], [r["accepted"] for r in rows], label=f"{k} accepted")
        ax.plot([r["t"] for r in rows], [r["offered"] for r in rows], linestyle="--", linewidth=0.8, label=f"{k} offered")
        if any(r["rejected"] for r in rows):
            ax.plot([r["t"] for r in rows], [r["rejected"] for r in rows], linestyle=":", label=f"{k} rejected")
    ax.set(title=f"{report['scenario']}: throughput (items/s)", xlabel="seconds", ylabel="items per second")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    out.append(_save(fig, out_dir / "throughput.png"))

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for k in keys:
        rows = [r for r in by_key[k] if r["p50_ms"] is not None]
        for q, style in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
            ax.plot([r["t"] for r in rows], [r[q] for r in rows], linestyle=style, label=f"{k} {q[:-3]}")
    ax.set(title=f"{report['scenario']}: request latency (ms)", xlabel="seconds", ylabel="ms")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    out.append(_save(fig, out_dir / "latency.png"))

    fig, ax = plt.subplots(figsize=(10, 4))
    for signal, data in report["freshness"].items():
        pts = [s for s in data["samples"] if s["seconds"] is not None]
        ax.plot([s["t"] for s in pts], [s["seconds"] for s in pts], marker="o", label=signal)
    ax.set(title=f"{report['scenario']}: freshness (seconds until a marker is queryable)", xlabel="seconds", ylabel="s")
    ax.legend()
    ax.grid(alpha=0.3)
    out.append(_save(fig, out_dir / "freshness.png"))
    return out


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def summary(report: dict) -> str:
    lines = [f"Scenario {report['scenario']} ({report['duration_s']:g} s, {report['workers']} workers) -> {report['target']}"]
    lines.append(f"{'stream':<22}{'offered':>10}{'accepted':>10}{'rejected':>10}{'failed':>8}{'retries':>8}"
                 f"{'/s':>9}{'p50':>8}{'p95':>8}{'p99':>8}")
    for key, t in report["totals"].items():
        lat = t["latency_ms"]
        fmt = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
        lines.append(f"{key:<22}{t['offered']:>10}{t['accepted']:>10}{t['rejected_total']:>10}{t['failed']:>8}"
                     f"{t['retries']:>8}{t['accepted_per_s']:>9}{fmt(lat['p50']):>8}{fmt(lat['p95']):>8}{fmt(lat['p99']):>8}")
        if t["rejected"]:
            lines.append(f"{'':<22}rejected by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(t["rejected"].items())))
        lines.append(f"{'':<22}responses: " + ", ".join(f"{s}: {n}" for s, n in sorted(t["responses"].items())))
    lines.append("counts balance (offered = accepted + rejected + failed): " + ("yes" if report["balanced"] else "NO"))
    for signal, f in report["freshness"].items():
        if f["samples"]:
            lines.append(f"freshness {signal}: p50 {f['p50_s']} s, max {f['max_s']} s, not visible {f['not_visible']}")
    b = report["backend"]
    if b.get("measured"):
        for tenant, t in b["tenants"].items():
            lines.append(f"stored in {tenant}: {t['logs_stored']} log lines (loss {t['logs_loss']}), "
                         f"{t['points_stored']} samples (loss {t['points_loss']})")
    else:
        lines.append(f"backend counts: not measured ({b.get('reason')})")
    if report.get("items_per_cpu_second"):
        lines.append(f"generator: {report['generator_cpu_seconds']} CPU s, {report['items_per_cpu_second']} items per CPU second")
    return "\n".join(lines)
