"""The run's report: JSON with every number, PNG plots, and a one-screen summary.

Per tenant and signal, in total and per second (the second a batch was due in):
target = offered + not sent, and offered = accepted + rejected + failed. Latency runs
from when a batch was due (HDR histograms for the totals); service time from its first
attempt.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

QUANTILES = (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9))


def percentile(values: list[float], q: float) -> float | None:
    return sorted_percentile(sorted(values), q) if values else None


def sorted_percentile(s: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values already sorted, not empty."""
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


def hist_summary(hist) -> dict:
    """Quantiles of an HDR histogram of microseconds, in milliseconds."""
    if hist is None or not hist.get_total_count():
        return {**{name: None for name, _ in QUANTILES}, "max": None, "count": 0}
    out = {name: round(hist.get_value_at_percentile(q) / 1000, 3) for name, q in QUANTILES}
    out["max"] = round(hist.get_max_value() / 1000, 3)
    out["count"] = hist.get_total_count()
    return out


# What an OTLP partial_success message is about, and what it means for the run.
PARTIAL_CAUSES = (
    ("out-of-order samples", r"out.of.order|too old|out of bounds|older than|duplicate sample",
     "samples older than the newest Mimir holds for their series (a resent batch it had already stored); "
     "Mimir dropped those samples, which the run's accepted count already excludes"),
    ("series limit", r"series limit|max.?series|per.user series",
     "the tenant's active-series limit: new series were refused"),
    ("rate limit", r"ingestion rate|rate limit|rate_limited",
     "the tenant's ingestion rate limit: records were refused"),
    ("too large", r"too large|max.?size|exceeds",
     "a record, label or line over a size limit: refused"),
)


def _reject_cause(status: str) -> str:
    """How the plots group a rejection: 429 (rate limited), 5xx (the stack failed),
    partial_success (accepted in part), other 4xx."""
    if status == "partial_success":
        return "partial_success"
    if status == "429":
        return "429"
    if status.startswith("5"):
        return "5xx"
    return "other 4xx"


def _rejections(by_status: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for status, n in sorted(by_status.items()):
        out[_reject_cause(status)] = out.get(_reject_cause(status), 0) + n
    return out


def partial_cause(message: str) -> str:
    import re

    for cause, pattern, _ in PARTIAL_CAUSES:
        if re.search(pattern, message, re.IGNORECASE):
            return cause
    return "other"


def _by_cause(messages: dict[str, int]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for message, n in messages.items():
        c = out.setdefault(partial_cause(message), {"answers": 0, "example": message.strip().splitlines()[0][:160]
                                                    if message.strip() else ""})
        c["answers"] += n
    return out


def _signal(key: str) -> str:
    return key.split("/", 1)[1]


def _tenant(key: str) -> str:
    return key.split("/", 1)[0]


def build(live, scenario, target_label: str, backend: dict | None, limits: dict | None = None,
          baseline=None) -> dict:
    """``limits``: tenant -> {requests_per_second, burst} of the gateway, when known;
    ``baseline``: for a scenario that measures isolation, (baseline runs, flood runs): the
    rounds without the flood and with it (``live`` being the last flood run)."""
    keys = sorted(live.totals)
    duration = scenario.duration_s
    timeline, totals = [], {}
    for key in keys:
        t = live.totals[key]
        rows = []
        for sec, b in sorted(live.timeline.get(key, {}).items()):
            rows.append({
                "t": sec, "key": key, **{k: b[k] for k in ("target", "offered", "not_sent", "accepted", "rejected",
                                                          "failed", "retries", "requests")},
                "rejected_by": _rejections(b.get("rejected_by", {})),
                "p50_ms": percentile(b["latency_ms"], 50), "p99_ms": percentile(b["latency_ms"], 99),
                "max_ms": max(b["latency_ms"]) if b["latency_ms"] else None,
            })
        timeline += rows
        rejected = sum(t["rejected"].values())
        not_sent = sum(t["not_sent"].values())
        per_second_ok = all(r["target"] == r["offered"] + r["not_sent"]
                            and r["offered"] == r["accepted"] + r["rejected"] + r["failed"] for r in rows)
        raw, packed = t["gzip_sample"]
        # A lost worker's records are unknown: scheduled (the planned target) but neither
        # reported as not sent nor with an outcome. They fail the balance.
        planned = max(t["target"], getattr(live, "planned", {}).get(key, t["target"]))
        unknown = planned - not_sent - t["accepted"] - rejected - t["failed"] if live.lost_workers else 0
        totals[key] = {
            "target": planned, "offered": t["offered"], "not_sent": not_sent, "not_sent_by_reason": t["not_sent"],
            "unknown": unknown,
            "accepted": t["accepted"], "rejected": t["rejected"], "rejected_total": rejected, "failed": t["failed"],
            "retries": t["retries"], "requests": t["requests"], "responses": t["responses"],
            "in_flight_limit": t["lanes"],
            "partial_success": {"rejected": t["rejected"].get("partial_success", 0), "messages": t["messages"],
                                "by_cause": _by_cause(t["messages"])},
            "balanced": (not live.lost_workers and planned == t["target"] == t["offered"] + not_sent
                         and t["offered"] == t["accepted"] + rejected + t["failed"] and per_second_ok),
            "per_s": {k: round(t[k] / duration, 1) for k in ("target", "offered", "accepted")},
            "requests_per_s": round(t["requests"] / duration, 1),
            "latency_ms": hist_summary(live.latency.get(key)),
            "service_ms": hist_summary(live.service.get(key)),
            "bytes": {"raw": t["bytes_raw"], "sent": t["bytes_sent"],
                      "per_item": round(t["bytes_raw"] / t["offered"], 1) if t["offered"] else None,
                      "gzip_ratio": round(raw / packed, 2) if packed else None},
        }
    cpu = sum(live.cpu_seconds.values())
    items = sum(t["offered"] for t in live.totals.values())
    report = {
        "scenario": scenario.name,
        "description": scenario.description,
        "run_id": live.run_id,
        "target": target_label,
        "duration_s": duration,
        "workers": live.workers,
        "lost_workers": live.lost_workers,
        "log_content": scenario.log_content.model_dump(),
        "compression": scenario.compression,
        "generator_cpu_seconds": round(cpu, 3),
        "items_per_cpu_second": round(items / cpu) if cpu else None,
        "totals": totals,
        "balanced": not live.lost_workers and all(t["balanced"] for t in totals.values()),
        "timeline": timeline,
        "tenants": _tenants(totals, timeline, limits),
        "isolation": _isolation(baseline, live, scenario, limits),
        "freshness": {
            tenant: {signal: {
                "samples": sorted(samples, key=lambda s: s["t"]),
                "p50_s": percentile([s["seconds"] for s in samples if s["seconds"] is not None], 50),
                "max_s": max((s["seconds"] for s in samples if s["seconds"] is not None), default=None),
                "failed": sum(1 for s in samples if s["seconds"] is None)}
                for signal, samples in by_signal.items()}
            for tenant, by_signal in sorted(live.freshness.items())
        },
        "backend": backend or {"measured": False, "reason": "no backend to query"},
    }
    return report


def _tenants(totals: dict, timeline: list[dict], limits: dict | None) -> dict:
    """Per tenant: requests offered per second while it had load to send (seconds with a
    target), against the gateway's limit when known."""
    out: dict = {}
    for key in totals:
        name = _tenant(key)
        rows = [r for r in timeline if _tenant(r["key"]) == name]
        active = {r["t"] for r in rows if r["target"]}
        out[name] = {"active_seconds": len(active),
                     "requests_per_s": round(sum(r["requests"] for r in rows) / max(1, len(active)), 1)}
    for name, t in out.items():
        limit = (limits or {}).get(name)
        if limit:
            t["limit_requests_per_s"] = limit["requests_per_second"]
            t["limit_burst"] = limit["burst"]
            t["times_limit"] = round(t["requests_per_s"] / limit["requests_per_second"], 1)
    return out


def _isolation(baseline, live, scenario, limits: dict | None) -> dict | None:
    if scenario.isolation is None:
        return None
    if baseline is None:
        return {"measured": False, "reason": "no baseline run"}
    from obskit.loadgen.isolation import compare

    baselines, floods = baseline
    return {"measured": True, **compare(list(baselines), list(floods), scenario, limits)}


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


# --------------------------------------------------------------------------- plots

REJECT_LAYERS = (("429", "rejected 429 (rate limited)", "#ef6c00"), ("5xx", "rejected 5xx", "#ad1457"),
                 ("partial_success", "rejected in part (partial_success)", "#ffb300"),
                 ("other 4xx", "rejected, other 4xx", "#8d6e63"))
COLORS = {"accepted": "#2e7d32", "rejected": "#ef6c00", "failed": "#c62828", "not_sent": "#7e57c2",
          "target": "#212121", "offered": "#1565c0", "retries": "#6a1b9a",
          "p50": "#1565c0", "p99": "#ef6c00", "max": "#c62828"}


def _si(x: float, _pos=None) -> str:
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:g}{unit}"
    return f"{x:g}"


def _ms(x: float, _pos=None) -> str:
    return f"{x / 1000:g} s" if x >= 1000 else f"{x:g} ms"


def plots(report: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    plt.rcParams.update({"font.size": 11, "legend.fontsize": 10})
    keys = sorted(report["totals"])
    by_key = {k: [r for r in report["timeline"] if r["key"] == k] for k in keys}
    tenants = sorted({_tenant(k) for k in keys}) or ["(nothing sent)"]
    signals = [s for s in ("logs", "metrics") if any(_signal(k) == s for k in keys)] or ["logs"]
    name, out = report["scenario"], []
    unit = {"logs": "log records / s", "metrics": "data points / s"}

    # Throughput: a panel per signal (and tenant), stacked outcomes under target and offered.
    fig, axes = plt.subplots(len(signals), len(tenants), figsize=(max(9.5, 6.5 * len(tenants)), 3.6 * len(signals)),
                             squeeze=False, sharex=True)
    for i, signal in enumerate(signals):
        for j, tenant in enumerate(tenants):
            ax = axes[i][j]
            rows = by_key.get(f"{tenant}/{signal}", [])
            ax.set_title(f"{tenant} · {signal}")
            ax.set_ylabel(unit[signal])
            ax.yaxis.set_major_formatter(FuncFormatter(_si))
            ax.grid(alpha=0.3)
            if not rows:
                ax.text(0.5, 0.5, "nothing sent", ha="center", va="center", transform=ax.transAxes, color="grey")
                continue
            # Per-second values drawn as steps (a step in the profile is a step, not a ramp);
            # each second's value holds from its start to the next, the last one to its end.
            t = [r["t"] for r in rows] + [rows[-1]["t"] + 1]
            def step(values) -> list:
                v = list(values)
                return v + v[-1:]

            layers = [("accepted", "accepted", COLORS["accepted"], [r["accepted"] for r in rows])]
            for cause, label, color in REJECT_LAYERS:  # rejections by cause, not lumped together
                values = [r.get("rejected_by", {}).get(cause, 0) for r in rows]
                if any(values):
                    layers.append((cause, label, color, values))
            unknown = [r["rejected"] - sum(r.get("rejected_by", {}).values()) for r in rows]
            if any(unknown):
                layers.append(("rejected", "rejected", COLORS["rejected"], unknown))
            layers += [("failed", "failed (no answer)", COLORS["failed"], [r["failed"] for r in rows]),
                       ("not_sent", "not sent", COLORS["not_sent"], [r["not_sent"] for r in rows])]
            ax.stackplot(t, *[step(v) for *_, v in layers], colors=[c for _, _, c, _ in layers], alpha=0.55,
                         labels=[lbl for _, lbl, _, _ in layers], step="post")
            # offered solid, target dashed on top of it: where they agree, both still show
            ax.step(t, step(r["offered"] for r in rows), where="post", color=COLORS["offered"], linewidth=2.4,
                    label="offered")
            ax.step(t, step(r["target"] for r in rows), where="post", color=COLORS["target"], linewidth=1.3,
                    linestyle=(0, (4, 3)), label="target")
            ax.set_ylim(bottom=0)
            ax.set_xlim(0, report["duration_s"])
        axes[-1][0].set_xlabel("seconds into the run (by when items were due)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for row in axes:
        for ax in row:
            for h, lbl in zip(*ax.get_legend_handles_labels()):
                if lbl not in labels:
                    handles.append(h)
                    labels.append(lbl)
    _title_and_legend(fig, f"{name}: throughput (outcomes stacked: they add up to the target)", handles, labels)
    out.append(_save(fig, out_dir / "throughput.png"))

    # Retries, in requests per second: a plot of their own, never a second axis in other units.
    retried = {k: rows for k, rows in by_key.items() if any(r["retries"] for r in rows)}
    if retried:
        fig, ax = plt.subplots(figsize=(9.5, 3.4))
        for key, rows in sorted(retried.items()):
            t = [r["t"] for r in rows] + [rows[-1]["t"] + 1]
            ax.step(t, [r["retries"] for r in rows] + [rows[-1]["retries"]], where="post", linewidth=1.8, label=key)
        ax.set_ylabel("retried requests / s")
        ax.set_xlabel("seconds into the run (by when items were due)")
        ax.set_ylim(bottom=0)
        ax.set_xlim(0, report["duration_s"])
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        _title_and_legend(fig, f"{name}: retried requests", handles, labels)
        out.append(_save(fig, out_dir / "retries.png"))

    # Latency: a panel per tenant; p50, p99 and max from when each batch was due.
    fig, axes = plt.subplots(1, len(tenants), figsize=(max(9.5, 6.5 * len(tenants)), 4.2), squeeze=False, sharey=True)
    # max drawn last, on top, thin and dotted with a mark each second: where it meets p99 both show.
    widths = {"max": 1.2, "p99": 2.6, "p50": 2.2}
    looks = {"max": {"zorder": 4, "marker": "o", "markersize": 2.5, "alpha": 0.9}, "p99": {"zorder": 3},
             "p50": {"zorder": 3}}
    for j, tenant in enumerate(tenants):
        ax = axes[0][j]
        for signal, style in (("logs", "-"), ("metrics", "--")):
            rows = [r for r in by_key.get(f"{tenant}/{signal}", []) if r["p50_ms"] is not None]
            for q in ("p50", "p99", "max"):
                # each second's value held over that second (steps), its mark (max) in the middle
                xs = [x for r in rows for x in (r["t"], r["t"] + 1)]
                ys = [r[f"{q}_ms"] for r in rows for _ in (0, 1)]
                ax.plot(xs, ys, color=COLORS[q], linestyle=":" if q == "max" else style, linewidth=widths[q],
                        label=f"{signal} {q}", **{k: v for k, v in looks[q].items() if k not in ("marker", "markersize")})
                if q == "max":
                    ax.plot([r["t"] + 0.5 for r in rows], [r["max_ms"] for r in rows], linestyle="none",
                            color=COLORS[q], **{k: v for k, v in looks[q].items() if k != "alpha"})
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_ms))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
        ax.set_title(f"{tenant}")
        ax.set_xlim(0, report["duration_s"])
        ax.set_xlabel("seconds into the run (by when batches were due)")
        ax.grid(alpha=0.3, which="major")
    axes[0][0].set_ylabel("latency from due time")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lbl in zip(*ax.get_legend_handles_labels()):
            if lbl not in labels:
                handles.append(h)
                labels.append(lbl)
    order = sorted(range(len(labels)), key=lambda i: (labels[i].split()[0], ["p50", "p99", "max"].index(labels[i].split()[1])))
    _title_and_legend(fig, f"{name}: request latency, measured from when each batch was due",
                      [handles[i] for i in order], [labels[i] for i in order])
    out.append(_save(fig, out_dir / "latency.png"))

    # Freshness: a panel per tenant, from zero; failed probes marked.
    fresh = report["freshness"]
    ftenants = sorted(fresh) or ["(no probes)"]
    fig, axes = plt.subplots(1, len(ftenants), figsize=(max(9.5, 6.5 * len(ftenants)), 3.8), squeeze=False, sharey=True)
    top = max([s["seconds"] for t in fresh.values() for d in t.values() for s in d["samples"]
               if s["seconds"] is not None] + [1.0])
    for j, tenant in enumerate(ftenants):
        ax = axes[0][j]
        ax.set_title(tenant)
        ax.set_xlim(0, report["duration_s"])
        ax.set_ylim(0, top * 1.25)  # from zero, so that a second looks like a second
        ax.set_xlabel("seconds into the run (when the marker was sent)")
        ax.grid(alpha=0.3)
        if tenant not in fresh:
            ax.text(0.5, 0.5, "freshness not probed", ha="center", va="center", transform=ax.transAxes, color="grey")
            continue
        ax.axhline(top * 1.08, color="grey", linewidth=0.8, linestyle=":")
        ax.text(0.01, top * 1.1, "failed probes", color="grey", fontsize=9, transform=ax.get_yaxis_transform())
        for signal, color, lift in (("logs", COLORS["p50"], 1.14), ("metrics", COLORS["p99"], 1.19)):
            data = fresh[tenant].get(signal, {"samples": [], "failed": 0})
            ok = [s for s in data["samples"] if s["seconds"] is not None]
            ax.plot([s["t"] for s in ok], [s["seconds"] for s in ok], marker="o", markersize=4, color=color,
                    label=signal)
            bad = [s for s in data["samples"] if s["seconds"] is None]
            ax.scatter([s["t"] for s in bad], [top * lift] * len(bad), marker="X", s=70, color=color, zorder=3,
                       label=f"{signal}: failed probe")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lbl in zip(*ax.get_legend_handles_labels()):
            if lbl not in labels:
                handles.append(h)
                labels.append(lbl)
    for ax, tenant in zip(axes[0], ftenants):
        if tenant in fresh:
            failed = ", ".join(f"{sig} {d['failed']} of {len(d['samples'])}" for sig, d in fresh[tenant].items())
            ax.set_title(f"{tenant} (failed: {failed})")
    axes[0][0].set_ylabel("seconds until queryable")
    _title_and_legend(fig, f"{name}: freshness (time from sending a marker to reading it back)", handles, labels)
    out.append(_save(fig, out_dir / "freshness.png"))
    return out


def _title_and_legend(fig, title: str, handles: list, labels: list) -> None:
    """A title, then one legend row under it, then the panels."""
    h = fig.get_figheight()
    fig.tight_layout()
    fig.suptitle(title, fontsize=13, x=0.01, y=1.0 - 0.12 / h, ha="left", va="top")
    if labels:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0 - 0.45 / h), ncol=min(7, len(labels)),
                   frameon=False)
    fig.subplots_adjust(top=1.0 - 1.05 / h)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# --------------------------------------------------------------------------- summary


def summary(report: dict) -> str:
    fmt = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
    lines = [f"Scenario {report['scenario']} ({report['duration_s']:g} s, {report['workers']} workers) -> {report['target']}"]
    lines.append(f"{'stream':<18}{'target':>10}{'offered':>10}{'not sent':>10}{'accepted':>10}{'rejected':>10}"
                 f"{'failed':>8}{'retries':>8}  latency from due p50/p99/p99.9 ms")
    for key, t in report["totals"].items():
        lat = t["latency_ms"]
        lines.append(f"{key:<18}{t['target']:>10}{t['offered']:>10}{t['not_sent']:>10}{t['accepted']:>10}"
                     f"{t['rejected_total']:>10}{t['failed']:>8}{t['retries']:>8}  "
                     f"{fmt(lat['p50'])}/{fmt(lat['p99'])}/{fmt(lat['p99.9'])} (service p99 {fmt(t['service_ms']['p99'])})")
        detail = [f"{t['in_flight_limit']} in flight at most", f"{t['requests_per_s']} requests/s"]
        if t["not_sent"]:
            detail.append("not sent: " + ", ".join(f"{r}: {n}" for r, n in sorted(t["not_sent_by_reason"].items())))
        if t["rejected"]:
            detail.append("rejected: " + ", ".join(f"{s}: {n}" for s, n in sorted(t["rejected"].items())))
        detail.append("responses: " + ", ".join(f"{s}: {n}" for s, n in sorted(t["responses"].items())))
        if t["bytes"]["gzip_ratio"]:
            detail.append(f"{t['bytes']['per_item']} bytes/item, gzip ratio {t['bytes']['gzip_ratio']}x")
        lines.append(f"{'':<18}" + "; ".join(detail))
        explain = {cause: text for cause, _, text in PARTIAL_CAUSES}
        by_cause = t["partial_success"].get("by_cause") or _by_cause(t["partial_success"]["messages"])
        for cause, c in sorted(by_cause.items()):
            what = explain.get(cause, "see report.json for the full messages")
            lines.append(f"{'':<18}partial_success, {cause}: {c['answers']} answer(s), "
                         f"{t['partial_success']['rejected']:,} record(s) rejected in all; {what}"
                         + (f' (e.g. "{c["example"]}")' if cause == "other" else ""))
    if report.get("lost_workers"):
        unknown = sum(t.get("unknown", 0) for t in report["totals"].values())
        lines.append(f"LOST {report['lost_workers']} of {report['workers']} sending processes (died without a final "
                     f"report): {unknown:,} scheduled records have an unknown outcome")
    lines.append("counts balance (target = offered + not sent, offered = accepted + rejected + failed, "
                 "in total and every second): " + ("yes" if report["balanced"] else "NO"))
    for tenant, t in report.get("tenants", {}).items():
        if "times_limit" in t:
            lines.append(f"{tenant}: offered {t['requests_per_s']} requests/s over the {t['active_seconds']} s it had "
                         f"load, {t['times_limit']}x the gateway's limit of {t['limit_requests_per_s']}/s "
                         f"(burst {t['limit_burst']})")
    lines += isolation_lines(report.get("isolation"))
    for tenant, by_signal in report["freshness"].items():
        for signal, f in by_signal.items():
            if f["samples"]:
                lines.append(f"freshness {tenant} {signal}: p50 {f['p50_s']} s, max {f['max_s']} s, "
                             f"{len(f['samples'])} probes, {f['failed']} failed")
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


def isolation_lines(iso: dict | None) -> list[str]:
    """The isolation comparison, a few lines of the summary."""
    if not iso:
        return []
    if not iso.get("measured"):
        return [f"isolation: not measured ({iso.get('reason')})"]
    a, b = iso["window_s"]
    runs = iso["runs"]

    def neighbours(run: dict) -> str:
        return ", ".join(f"{t} {n['requests_per_s']} requests/s" + (f" ({n['times_limit']}x its limit)"
                                                                     if "times_limit" in n else "")
                         for t, n in sorted(run["neighbours"].items())) or "no neighbour"

    kind = "at their limits" if iso["baseline"] == "at_limit" else "absent"
    lines = [f"isolation: {iso['tenant']} over {a:g}-{b:g} s of {iso['rounds']} flood runs ({neighbours(runs['flood'])}) "
             f"against the same seconds of {iso['rounds']} runs without the flood, the two alternating which "
             f"runs first (neighbours {kind}: "
             f"{neighbours(runs['baseline'])})"]
    fmt = lambda v: "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.2f}")  # noqa: E731
    for signal in sorted(runs["flood"]["signals"]):
        base, flood = runs["baseline"]["signals"].get(signal), runs["flood"]["signals"][signal]
        if base is None:
            continue
        parts = []
        for metric, label in (("accepted_per_s", "accepted/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms")):
            change = iso["changes"].get(f"{signal} {metric}")
            parts.append(f"{label} {fmt(base[metric])} -> {fmt(flood[metric])}"
                         + (f" ({change:+.1%})" if change is not None else ""))
        lines.append(f"  {signal:<8} " + ", ".join(parts) + f"; {base['requests']}/{flood['requests']} requests")
    for name, j in iso["judged"].items():
        if name.startswith("latency"):
            lo, hi = j["interval"] or (None, None)
            b, f = runs["baseline"]["latency"], runs["flood"]["latency"]
            metric = name.split()[1]
            lines.append(f"  {name.replace('_ms', ''):<12} {fmt(b[metric])} -> {fmt(f[metric])} ms"
                         + (f" ({j['change']:+.1%}; {iso['confidence']:.0%} interval {lo:+.1%} to {hi:+.1%})"
                            if lo is not None else "") + f": {j['verdict']}"
                         + f" ({b['requests']}/{f['requests']} requests, both signals)")
    verdict = iso["verdict"]
    why = {"within": "", "NOT within": "",
           "inconclusive": ": the interval straddles the tolerance (too few requests or rounds to tell; raise "
                           "--duration or isolation.rounds)"}[verdict]
    if iso.get("too_few_rounds"):
        why = (f": {iso['rounds']} round(s) cannot tell how the flood's effect varies between runs; a latency "
               f"verdict needs isolation.rounds of at least 3")
    lines.append(f"  -> {verdict} {iso['tolerance']:.0%}{why} (a lower latency or a higher rate is no harm)")
    return lines
