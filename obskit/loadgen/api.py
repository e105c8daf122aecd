"""``obskit load``: one call that runs a scenario against an environment and reports."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from obskit.errors import ObskitError
from obskit.loadgen import report as report_mod
from obskit.loadgen.isolation import IsolationError, baseline_scenario
from obskit.loadgen.run import Live, run
from obskit.loadgen.scenario import Scenario, load_scenario, with_duration
from obskit.loadgen.worker import Target


class LoadError(ObskitError):
    exit_code = 5


def target_for(ep, tenants: list[str]) -> Target:
    """The gateway of a stack, with each tenant's write credential."""
    return Target(base_url=ep.gateway, ca_file=ep.ca_file, auth={t: ep.auth_header(t, "write") for t in tenants})


def tenant_map(scenario: Scenario, spec_tenants: list[str]) -> dict[str | None, str]:
    mapping: dict[str | None, str] = {None: spec_tenants[0]}
    for load in scenario.tenants:
        if load.tenant is not None:
            if load.tenant not in spec_tenants:
                raise LoadError(f"scenario {scenario.name} sends as tenant '{load.tenant}', which the spec does not declare",
                                hint="declared: " + ", ".join(spec_tenants))
            mapping[load.tenant] = load.tenant
    return mapping


def _instant(ep, tenant: str, url: str, query: str) -> float:
    r = ep.session(tenant).get(url, params={"query": query, "time": f"{time.time():.3f}"}, timeout=60)
    if r.status_code != 200:
        raise LoadError(f"counting query answered {r.status_code}: {r.text[:200]}")
    result = r.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def backend_counts(ep, live: Live, tenants: dict[str | None, str], settle_s: float = 90) -> dict:
    """After the run: how many log lines and samples of this run Loki and Mimir hold, per
    tenant, read through the gateway. Polls until two reads agree (ingestion settles)."""
    namespace = f"loadgen-{live.run_id}"
    window = int(time.time() - live.started) + 120
    logs_q = f'sum(count_over_time({{service_namespace="{namespace}"}}[{window}s]))'
    points_q = f'sum(count_over_time(loadgen_value{{job=~"{namespace}/.+"}}[{window}s]))'
    out: dict = {"measured": True, "tenants": {}}
    for tenant in dict.fromkeys(tenants.values()):  # what was accepted (partial_success rejections excluded)
        sent_logs = live.totals.get(f"{tenant}/logs", {}).get("accepted", 0)
        sent_points = live.totals.get(f"{tenant}/metrics", {}).get("accepted", 0)
        if not (sent_logs or sent_points):
            continue
        began, last = time.time(), None
        while True:
            now = (_instant(ep, tenant, f"{ep.gateway}/loki/api/v1/query", logs_q) if sent_logs else 0,
                   _instant(ep, tenant, f"{ep.gateway}/prometheus/api/v1/query", points_q) if sent_points else 0)
            if now[0] >= sent_logs and now[1] >= sent_points:
                break  # everything arrived
            if (now == last and time.time() - began > 15) or time.time() - began > settle_s:
                break  # settled short of it: that is the loss
            last = now
            time.sleep(3)
        out["tenants"][tenant] = {
            "logs_accepted": sent_logs, "logs_stored": int(now[0]), "logs_loss": sent_logs - int(now[0]),
            "points_accepted": sent_points, "points_stored": int(now[1]), "points_loss": sent_points - int(now[1]),
        }
    return out


@dataclass
class LoadResult:
    report: dict
    files: list[Path]

    def to_json(self) -> dict:
        return {"report": self.report, "files": [str(p) for p in self.files]}


def load(resolved, env_name: str, scenario_name: str, *, duration: str | None = None, workers: int | None = None,
         out: Path | None = None, count: bool = True, freshness: bool = True,
         on_tick: Callable[[Live], None] | None = None) -> LoadResult:
    from obskit.project import Project
    from obskit.stack import endpoints
    from obskit.verify import CheckFailed, preflight

    scenario = load_scenario(scenario_name)
    if duration:
        scenario = with_duration(scenario, duration)
    from obskit.runtime.process import running_endpoints

    project = Project.of(resolved)
    ep, _note = running_endpoints(project, env_name, endpoints(project, env_name))
    from obskit.verify import GatewayUnreachable, ensure_gateway_answers

    try:
        ensure_gateway_answers(ep, env_name=env_name)  # nothing there, or another stack: said at once
    except GatewayUnreachable as exc:  # load's own exit code for "could not reach the gateway" (5)
        raise LoadError(f"cannot load the stack through its gateway: {exc.message}", hint=exc.hint) from None
    try:
        preflight(ep)
    except CheckFailed as exc:
        raise LoadError(str(exc), hint=f"is the stack up? `obskit up --env {env_name}`") from None
    spec_tenants = [t.name for t in resolved.spec.tenants]
    tenants = tenant_map(scenario, spec_tenants)
    target = target_for(ep, list(dict.fromkeys(tenants.values())))
    limits = {t.name: t.limits.model_dump() for t in resolved.spec.tenants}
    plain = None
    if scenario.isolation is not None:  # rounds of the scenario without the flood, then with it
        try:
            plain = baseline_scenario(scenario, tenants, limits)
        except IsolationError as exc:
            raise LoadError(str(exc)) from None
    rounds = scenario.isolation.rounds if plain is not None else 1
    baselines: list[Live] = []
    floods: list[Live] = []
    from obskit.loadgen.isolation import round_order

    for r in range(1, rounds + 1):
        for side in (round_order(r) if plain is not None else ("flood",)):
            if side == "baseline":
                baselines.append(run(plain, target, tenants=tenants, workers=workers, on_tick=on_tick,
                                     label=f"round {r}/{rounds}, baseline run (no flood)"))
                continue
            # Freshness probes in the last flood run only: its report, counts and plots are the ones written.
            floods.append(run(scenario, target, tenants=tenants, workers=workers, on_tick=on_tick,
                              probes=ep if freshness and r == rounds else None,
                              label=f"round {r}/{rounds}, flood run" if plain is not None else ""))
    live = floods[-1]
    backend = backend_counts(ep, live, tenants) if count else {"measured": False, "reason": "--no-count"}
    rep = report_mod.build(live, scenario, ep.gateway, backend, limits,
                           baseline=(baselines, floods) if baselines else None)
    out = Path(out or project.state_dir / "load" / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}-{live.run_id}")
    files = report_mod.write(rep, out)
    if plain is not None:
        plain_report = report_mod.build(baselines[-1], plain, ep.gateway,
                                         {"measured": False, "reason": "baseline run"}, limits)
        files += report_mod.write(plain_report, out / "baseline")
    return LoadResult(rep, files)


def unbalanced_error(result: LoadResult) -> LoadError | None:
    """A report whose counts do not balance (a lost worker, records unaccounted for) fails
    the command: its numbers cannot be trusted."""
    rep = result.report
    if rep["balanced"]:
        return None
    if rep.get("lost_workers"):
        unknown = sum(t.get("unknown", 0) for t in rep["totals"].values())
        return LoadError(f"{rep['lost_workers']} of {rep['workers']} sending processes died during the run: "
                         f"{unknown:,} records have an unknown outcome, so the report cannot be trusted",
                         hint="the generator ran out of memory or was killed; check `dmesg`, then run again "
                              "(fewer --workers, or a shorter --duration)")
    return LoadError("the report's counts do not balance (records unaccounted for)",
                     hint="this is a bug in obskit's load generator; please report it with the report.json")
