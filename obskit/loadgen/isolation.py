"""Isolation: what does a neighbour's flood cost a quiet tenant?

A scenario with ``isolation`` is run in alternating rounds: a *baseline run*, without the
flood, then the scenario itself, ``isolation.rounds`` times. In the baseline run every neighbour of the quiet tenant sends at exactly its gateway limit (``baseline:
at_limit``, the most the gateway lets through, so that both runs put the same accepted load
on the backends and differ only in the excess the gateway refuses), or not at all
(``baseline: alone``, which also charges the neighbour's allowed share to the flood). The
quiet tenant's accepted rate and latency from due time (p50, p90, p99) over the same window
of every run, pooled per kind of run, are compared against a tolerance.

Latency is judged on the quiet tenant's requests of both signals together, with a paired
bootstrap confidence interval for each change (``change_intervals``; a p99 of a few hundred
requests moves by tens of per cent between two identical runs): *within* when the interval lies at or below the
tolerance, *NOT within* when it lies above it, *inconclusive* when it straddles it (too few
requests to tell: run longer). The accepted rate is counted exactly and judged as it is.

The quiet tenant sends from processes of its own in both runs (``run.tenant_groups``), so the
generator does not couple the tenants it is comparing.
"""

from __future__ import annotations

import math

from obskit.loadgen.report import percentile as _percentile
from obskit.loadgen.report import sorted_percentile as _sorted_percentile
from obskit.loadgen.scenario import Scenario, TenantLoad, rate_at, seconds

METRICS = ("accepted_per_s", "p50_ms", "p90_ms", "p99_ms")
JUDGED = (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99))  # latency statistics with a confidence interval
CONFIDENCE = 0.95
ROUNDS = 1000  # bootstrap resamples


class IsolationError(ValueError):
    """The baseline run cannot be derived (a neighbour's gateway limit is unknown)."""


def peak_requests_per_s(load: TenantLoad, scenario: Scenario) -> float:
    """The most requests per second a tenant's profiles ask for at any moment (profiles are
    piecewise linear, so the peak is at one of their points)."""
    knots = {seconds(p.at) for p in load.logs + load.points} | {0.0}
    return max(rate_at(load.logs, t) / scenario.batch_logs + rate_at(load.points, t) / scenario.batch_points
               for t in knots)


def baseline_scenario(scenario: Scenario, tenants: dict[str | None, str], limits: dict | None) -> Scenario:
    """The run without the flood. ``tenants`` maps scenario tenants to real ones, ``limits``
    real tenants to their gateway limits ({requests_per_second, burst})."""
    iso = scenario.isolation
    if iso is None:
        raise IsolationError(f"scenario {scenario.name} has no isolation block")
    kept = []
    for load in scenario.tenants:
        if load.tenant == iso.tenant:
            kept.append(load)
            continue
        if iso.baseline == "alone":
            continue
        real = tenants.get(load.tenant, load.tenant)
        limit = (limits or {}).get(real, {}).get("requests_per_second")
        if not limit:
            raise IsolationError(f"isolation.baseline at_limit needs tenant {real}'s gateway limit, which is not known")
        peak = peak_requests_per_s(load, scenario)
        k = min(1.0, limit / peak) if peak else 0.0
        scale = lambda profile: [p.model_copy(update={"rate": p.rate * k}) for p in profile]  # noqa: E731
        kept.append(load.model_copy(update={"logs": scale(load.logs), "points": scale(load.points)}))
    return scenario.model_copy(update={"name": f"{scenario.name}-baseline", "tenants": kept})


def _latencies(live, key: str, window: tuple[float, float]) -> list[float]:
    line = live.timeline.get(key, {})
    return [x for s in range(int(window[0]), int(math.ceil(window[1]))) for x in line.get(s, {}).get("latency_ms", [])]


def _quantiles(lat: list[float]) -> dict:
    return {name: _percentile(lat, q) for name, q in JUDGED}


MIN_ROUNDS = 3  # rounds (baseline and flood run each) before a latency verdict is given


def round_order(r: int) -> tuple[str, str]:
    """Which run of round ``r`` (from 1) goes first: alternating, so that neither side
    always runs on a stack the other has just warmed up (or loaded)."""
    return ("baseline", "flood") if r % 2 else ("flood", "baseline")


def change_intervals(base_runs: list[list[float]], flood_runs: list[list[float]], seed: int = 0) -> dict:
    """For each judged percentile, a bootstrap confidence interval (percentile method,
    ``CONFIDENCE``) for its relative change from the baseline runs to the flood runs.

    Two levels, paired: the i-th baseline run and the i-th flood run (run one after the
    other, a *round*) are drawn together, rounds with replacement, then the requests within
    each drawn run with replacement. Drift slower than a round hits both sides of it alike
    and cancels; how much the flood's effect varies from round to round, and the sampling
    noise within a run, both widen the interval. With one round, only the sampling noise is
    in it. Deterministic for a seed."""
    import random

    rounds = [(b, f) for b, f in zip(base_runs, flood_runs) if b and f]
    if not rounds:
        return {name: None for name, _ in JUDGED}
    rng = random.Random(seed)
    changes: dict[str, list[float]] = {name: [] for name, _ in JUDGED}
    for _ in range(ROUNDS):
        xs: list[float] = []
        ys: list[float] = []
        for b, f in rng.choices(rounds, k=len(rounds)):
            xs += rng.choices(b, k=len(b))
            ys += rng.choices(f, k=len(f))
        xs.sort()
        ys.sort()
        for name, q in JUDGED:
            x, y = _sorted_percentile(xs, q), _sorted_percentile(ys, q)
            if x:
                changes[name].append((y - x) / x)
    tail = (1 - CONFIDENCE) / 2
    out = {}
    for name, c in changes.items():
        c.sort()
        out[name] = (round(c[int(tail * len(c))], 4), round(c[min(len(c) - 1, int((1 - tail) * len(c)))], 4)) if c else None
    return out


def verdict(interval: tuple[float, float] | None, tolerance: float) -> str:
    if interval is None:
        return "inconclusive"
    lo, hi = interval
    if hi <= tolerance:
        return "within"
    if lo > tolerance:
        return "NOT within"
    return "inconclusive"


def _side(lives: list, quiet: str, window: tuple[float, float], limits: dict | None) -> tuple[dict, list[list[float]]]:
    """One side of the comparison (the baseline runs or the flood runs), pooled."""
    secs = range(int(window[0]), int(math.ceil(window[1])))
    side: dict = {"run_ids": [getattr(live, "run_id", None) for live in lives], "signals": {}, "neighbours": {},
                  "runs_p50_ms": []}
    runs: list[list[float]] = []
    by_signal: dict[str, dict] = {}
    for live in lives:
        lat: list[float] = []
        for key in sorted(live.timeline):
            tenant, signal = key.split("/", 1)
            line = live.timeline[key]
            if tenant == quiet:
                lat_k = _latencies(live, key, window)
                lat += lat_k
                b = by_signal.setdefault(signal, {"accepted": 0, "latency": []})
                b["accepted"] += sum(line.get(s, {}).get("accepted", 0) for s in secs)
                b["latency"] += lat_k
            else:
                n = side["neighbours"].setdefault(tenant, {"requests": 0})
                n["requests"] += sum(line.get(s, {}).get("requests", 0) for s in secs)
        runs.append(lat)
        side["runs_p50_ms"].append(_percentile(lat, 50))
    seconds_seen = max(1, len(secs) * len(lives))
    for signal, b in by_signal.items():
        side["signals"][signal] = {"accepted_per_s": round(b["accepted"] / seconds_seen, 1),
                                   **_quantiles(b["latency"]), "requests": len(b["latency"])}
    for tenant, n in side["neighbours"].items():
        per_s = round(n["requests"] / seconds_seen, 1)
        side["neighbours"][tenant] = {"requests_per_s": per_s}
        limit = (limits or {}).get(tenant, {}).get("requests_per_second")
        if limit:
            side["neighbours"][tenant]["times_limit"] = round(per_s / limit, 2)
    pooled = [x for r in runs for x in r]
    side["latency"] = {**_quantiles(pooled), "requests": len(pooled)}
    return side, runs


def compare(baselines: list, floods: list, scenario: Scenario, limits: dict | None = None) -> dict:
    """The quiet tenant's window in the baseline runs against the same window in the flood
    runs (the i-th of each make round i). Only a change for the worse counts against the
    tolerance: a lower latency or a higher accepted rate is no harm."""
    iso = scenario.isolation
    mapping = getattr(floods[0], "tenant_map", None) or {}
    quiet = mapping.get(iso.tenant, iso.tenant)
    window = iso.window_s()
    out: dict = {"tenant": quiet, "baseline": iso.baseline, "window_s": list(window), "tolerance": iso.tolerance,
                 "rounds": min(len(baselines), len(floods)), "confidence": CONFIDENCE, "runs": {}, "changes": {},
                 "judged": {}}
    base, base_runs = _side(baselines, quiet, window, limits)
    flood, flood_runs = _side(floods, quiet, window, limits)
    out["runs"] = {"baseline": base, "flood": flood}
    for signal in sorted(set(base["signals"]) & set(flood["signals"])):
        for metric in METRICS:
            x, y = base["signals"][signal][metric], flood["signals"][signal][metric]
            if x and y is not None:
                out["changes"][f"{signal} {metric}"] = round((y - x) / x, 4)
        change = out["changes"].get(f"{signal} accepted_per_s")
        out["judged"][f"{signal} accepted_per_s"] = {
            "change": change,
            "verdict": "inconclusive" if change is None else ("within" if -change <= iso.tolerance else "NOT within")}
    intervals = change_intervals(base_runs, flood_runs)
    for metric, _ in JUDGED:
        x, y = base["latency"][metric], flood["latency"][metric]
        out["judged"][f"latency {metric}"] = {"change": round((y - x) / x, 4) if x and y is not None else None,
                                             "interval": intervals[metric],
                                             "verdict": verdict(intervals[metric], iso.tolerance)}
    if out["rounds"] < MIN_ROUNDS:
        # One or two rounds say nothing about how the flood's effect varies from run to run
        # (simulated, one round's interval covered the true change 38-65% of the time).
        for name, j in out["judged"].items():
            if name.startswith("latency"):
                j["verdict"] = "inconclusive"
        out["too_few_rounds"] = True
    verdicts = {j["verdict"] for j in out["judged"].values()}
    out["verdict"] = ("NOT within" if "NOT within" in verdicts else "inconclusive" if "inconclusive" in verdicts
                      else "within")
    out["within_tolerance"] = out["verdict"] == "within"
    return out
