"""`obskit check`: every rendered file checked by its own tool, wherever it is installed.

- YAML and JSON files parse;
- every variable a config references is bound for every service that uses it, and no
  binding is left unused (per environment);
- the compose file passes ``docker compose config`` with every variable interpolated;
- the gateway passes ``nginx -t`` with loopback bindings and throwaway certificates;
- every PromQL expression the kit ships passes ``promtool``;
- ``loki -verify-config``, ``mimir -print.config`` and the collector's ``validate`` run
  on the rendered configs when those binaries are on PATH.

A tool that is not installed gives a ``skip`` with the reason, never a silent pass.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from obskit import bindings
from obskit.errors import ObskitError, ToolNotFound
from obskit.render import Files, render, write_environment
from obskit.spec.load import ResolvedSpec
from obskit.tools.run import run, which


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | skip
    detail: str


# --------------------------------------------------------------------------- variables

_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[-?][^}]*)?\}")
_OTEL = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
_GRAFANA = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
# grafana.ini expands $__env{NAME} (and $__file{...}, $__vault{...}, which bind nothing).
_GRAFANA_INI = re.compile(r"\$__env\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SHELL = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")

# Variables a component reads straight from its environment, not through its files.
CONSUMED_DIRECTLY = {
    "grafana": re.compile(r"^GF_"),
    "postgres": re.compile(r"^(POSTGRES_|PGDATA$)"),
    # versitygw (ROOT_*, VGW_*) and MinIO in compose; in the process runtime obskit itself
    # reads S3_* to start its S3 API.
    "object-store": re.compile(r"^(MINIO_|S3_|ROOT_(ACCESS|SECRET)_|VGW_)"),
}
# Shell variables of the gateway's entrypoint script that are its own, not bindings.
_ASSIGNED = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", re.M)
_OPTIONAL = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-")


def _script_vars(text: str) -> set[str]:
    """An entrypoint script's variables from its environment: a script's own variables and
    those it gives a default (${X:-d}) need no binding."""
    names = {a or b for a, b in _SHELL.findall(text)}
    return names - set(_ASSIGNED.findall(text)) - set(_OPTIONAL.findall(text))


def referenced_vars(rel: str, text: str) -> set[str]:
    """The environment variables a rendered config file expects its component to expand."""
    component = rel.split("/")[1]
    # Whole-line comments (YAML, nginx, shell and ini alike) document; they bind nothing.
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", ";")))
    if component in ("loki", "mimir"):
        return set(_BRACED.findall(text))
    if component == "otelcol":
        return set(_OTEL.findall(text))
    if component == "grafana":
        if rel.endswith(".ini"):
            return set(_GRAFANA_INI.findall(text))
        if rel.endswith(".sh"):
            return _script_vars(text)
        if not rel.endswith((".yaml", ".yml")):
            return set()
        text = text.replace("$$", "")
        return {a or b for a, b in _GRAFANA.findall(text) if not (a or b).startswith("__")}
    if component == "gateway":
        if rel.endswith(".sh"):
            return _script_vars(text)
        return {a or b for a, b in _SHELL.findall(text) if (a or b).startswith("OBSKIT_")}
    return set()


def binding_problems(files: Mapping[str, bytes], services: Mapping[str, bindings.Service]) -> list[str]:
    """Unbound references and unused bindings, per service."""
    by_component: dict[str, set[str]] = {}
    for rel, data in files.items():
        if rel.startswith("configs/"):
            comp = rel.split("/")[1]
            by_component.setdefault(comp, set()).update(referenced_vars(rel, data.decode()))
    problems = []
    for name, svc in sorted(services.items()):
        used = by_component.get(svc.component, set())
        bound = set(svc.env)
        direct = CONSUMED_DIRECTLY.get(svc.component)
        for var in sorted(used - bound):
            problems.append(f"{name}: {var} is referenced by configs/{svc.component} but not bound")
        for var in sorted(bound - used):
            if direct is None or not direct.search(var):
                problems.append(f"{name}: {var} is bound but no config of {svc.component} uses it")
    return problems


# --------------------------------------------------------------------------- parsing


def parse_problems(files: Mapping[str, bytes]) -> list[str]:
    problems = []
    for rel, data in sorted(files.items()):
        try:
            if rel.endswith((".yaml", ".yml")):
                yaml.safe_load(data)
            elif rel.endswith(".json"):
                json.loads(data)
        except (yaml.YAMLError, ValueError) as exc:
            problems.append(f"{rel}: {exc}")
    return problems


# --------------------------------------------------------------------------- PromQL

GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
GRAFANA_VARS = re.compile(r"\$\$?\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*")


def shipped_queries(files: Mapping[str, bytes]) -> list[tuple[str, str, str]]:
    """(where, language, expression) of every query the kit ships: dashboard targets,
    datasource derived fields and alert rules (stack rules and the spec's)."""
    return [(where, lang, expr) for where, lang, expr, _uid in shipped_query_targets(files)]


def shipped_query_targets(files: Mapping[str, bytes]) -> list[tuple[str, str, str, str]]:
    """(where, language, expression, datasource uid) of every shipped query. The uid is the
    one the query runs against (a dashboard's datasource variable stays ``${name}``)."""
    from obskit import alerting

    found: list[tuple[str, str, str, str]] = []
    for rel, data in sorted(files.items()):
        if rel.startswith("configs/grafana/dashboards/") and rel.endswith(".json"):
            dash = json.loads(data)
            for panel in _panels(dash.get("panels", [])):
                for i, target in enumerate(panel.get("targets", [])):
                    ds = target.get("datasource") or panel.get("datasource") or {}
                    kind = ds.get("type") if isinstance(ds, dict) else None
                    if kind in ("prometheus", "loki") and target.get("expr"):
                        lang = "promql" if kind == "prometheus" else "logql"
                        found.append((f"{rel} panel '{panel.get('title', '?')}' target {i}", lang, target["expr"],
                                      str(ds.get("uid", ""))))
            for var in dash.get("templating", {}).get("list", []):
                query = var.get("query")
                if var.get("type") == "query" and isinstance(query, dict):
                    query = query.get("query")
                if var.get("type") == "query" and isinstance(query, str) and not query.startswith("label_values("):
                    ds = var.get("datasource") or {}
                    found.append((f"{rel} variable '{var['name']}'", "promql", query,
                                  str(ds.get("uid", "")) if isinstance(ds, dict) else ""))
        elif rel.startswith("configs/grafana/provisioning/datasources/"):
            doc = yaml.safe_load(data) or {}
            for ds in doc.get("datasources", []):
                for field in (ds.get("jsonData") or {}).get("derivedFields", []):
                    if str(field.get("datasourceUid", "")).endswith("-metrics"):
                        found.append((f"{rel} datasource {ds['uid']} derived field '{field['name']}'", "promql",
                                      field["url"], str(field["datasourceUid"])))
                for corr in ds.get("correlations") or []:
                    target = (corr.get("config") or {}).get("target") or {}
                    if target.get("expr"):
                        uid = str(corr.get("targetUID", ""))
                        lang = alerting.query_language(uid)
                        found.append((f"{rel} datasource {ds['uid']} correlation '{corr.get('label')}'", lang,
                                      target["expr"], uid))
    found += list(alerting.expression_targets(files))
    return found


def shipped_promql(files: Mapping[str, bytes]) -> list[tuple[str, str]]:
    return [(where, expr) for where, lang, expr in shipped_queries(files) if lang == "promql"]


def shipped_logql(files: Mapping[str, bytes]) -> list[tuple[str, str]]:
    return [(where, expr) for where, lang, expr in shipped_queries(files) if lang == "logql"]


def check_logql(exprs: list[tuple[str, str]], files: Mapping[str, bytes]) -> CheckResult:
    """Well-formedness of every LogQL query; alert rules must be metric queries."""
    from obskit import alerting, logql

    rule_queries = {where for where, lang, _ in alerting.expressions(files) if lang == "logql"}
    failures = []
    for where, expr in exprs:
        try:
            metric = logql.parse(expr)
        except logql.LogQLError as exc:
            failures.append(f"{where}: {exc}")
            continue
        if where in rule_queries and not metric:
            failures.append(f"{where}: an alert rule needs a metric query, e.g. count_over_time({{...}}[5m])")
    if failures:
        return CheckResult("logql", "fail", "; ".join(failures))
    return CheckResult("logql", "pass", f"{len(exprs)} LogQL expression(s) well formed")


def _panels(panels: list) -> Iterable[dict]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def promql_for_promtool(expr: str) -> str:
    """Grafana variables replaced by sample values, so promtool can parse the query."""
    expr = expr.replace("$$", "$")
    expr = GRAFANA_INTERVALS.sub("5m", expr)
    return GRAFANA_VARS.sub("sample", expr)


def check_promql(exprs: list[tuple[str, str]], workdir: Path) -> CheckResult:
    if not exprs:
        return CheckResult("promtool", "pass", "no PromQL shipped")
    if which("promtool") is None:
        return CheckResult("promtool", "skip", "promtool is not installed (apt-get install prometheus)")
    failures = []
    for i, (where, expr) in enumerate(exprs):
        rules = {"groups": [{"name": "obskit_check", "rules": [{"record": f"obskit:check_{i}", "expr": promql_for_promtool(expr)}]}]}
        path = workdir / f"promql-{i}.yaml"
        path.write_text(yaml.safe_dump(rules))
        result = run(["promtool", "check", "rules", str(path)], check=False)
        if result.returncode != 0:
            failures.append(f"{where}: {(result.stdout + result.stderr).strip().splitlines()[-1]}")
    if failures:
        return CheckResult("promtool", "fail", "; ".join(failures))
    return CheckResult("promtool", "pass", f"{len(exprs)} PromQL expression(s) parse")


# --------------------------------------------------------------------------- datasource references

BUILTIN_DATASOURCES = {"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --", "__expr__"}


def provisioned_datasources(files: Mapping[str, bytes]) -> dict[str, dict]:
    """uid -> provisioned datasource (name, type, ...)."""
    out: dict[str, dict] = {}
    for rel, data in sorted(files.items()):
        if rel.startswith("configs/grafana/provisioning/datasources/") and rel.endswith((".yaml", ".yml")):
            for ds in (yaml.safe_load(data) or {}).get("datasources", []):
                out[ds["uid"]] = ds
    return out


def _dashboard_refs(dash: dict) -> Iterable[tuple[str, object]]:
    for var in dash.get("templating", {}).get("list", []):
        if "datasource" in var:
            yield f"variable '{var.get('name')}'", var["datasource"]
    for ann in dash.get("annotations", {}).get("list", []):
        if "datasource" in ann:
            yield f"annotation '{ann.get('name')}'", ann["datasource"]
    for panel in _panels(dash.get("panels", [])):
        title = panel.get("title", "?")
        if "datasource" in panel:
            yield f"panel '{title}'", panel["datasource"]
        for i, target in enumerate(panel.get("targets", [])):
            if "datasource" in target:
                yield f"panel '{title}' target {i}", target["datasource"]


def datasource_problems(files: Mapping[str, bytes]) -> list[str]:
    """Every datasource a dashboard, rule, derived field or correlation names must be
    provisioned (by uid, or through a datasource variable that finds one)."""
    from obskit import alerting

    provisioned = provisioned_datasources(files)
    problems: list[str] = []
    for rel, data in sorted(files.items()):
        if rel.startswith("configs/grafana/dashboards/") and rel.endswith(".json"):
            dash = json.loads(data)
            ds_vars = {v["name"]: v for v in dash.get("templating", {}).get("list", []) if v.get("type") == "datasource"}
            for var in ds_vars.values():
                pattern = var.get("regex") or ""
                regex = re.compile(pattern[1:-1]) if pattern.startswith("/") and pattern.endswith("/") else None
                found = [d for d in provisioned.values() if d["type"] == var.get("query")
                         and (regex is None or regex.search(d["name"]))]
                if not found:
                    problems.append(f"{rel}: datasource variable '{var['name']}' ({var.get('query')}, regex {pattern!r}) finds no provisioned datasource")
            for where, ref in _dashboard_refs(dash):
                if ref is None:
                    continue
                uid = ref.get("uid") if isinstance(ref, dict) else ref
                kind = ref.get("type") if isinstance(ref, dict) else None
                if not isinstance(uid, str) or uid in BUILTIN_DATASOURCES:
                    continue
                m = re.fullmatch(r"\$\{?([A-Za-z0-9_]+)\}?", uid)
                if m:
                    var = ds_vars.get(m.group(1))
                    if var is None:
                        problems.append(f"{rel} {where}: '{uid}' is not a datasource variable of the dashboard")
                    elif kind and var.get("query") != kind:
                        problems.append(f"{rel} {where}: type {kind} through variable '{m.group(1)}' of type {var.get('query')}")
                elif uid not in provisioned:
                    problems.append(f"{rel} {where}: datasource uid '{uid}' is not provisioned")
                elif kind and provisioned[uid]["type"] != kind:
                    problems.append(f"{rel} {where}: '{uid}' is a {provisioned[uid]['type']} datasource, not {kind}")
    for rel, _grp, rule in alerting.provisioned_rules(files):
        refs = {d["refId"] for d in rule.get("data", [])}
        if rule.get("condition") not in refs:
            problems.append(f"{rel} rule '{rule.get('title')}': condition '{rule.get('condition')}' names no query")
        for d in rule.get("data", []):
            uid = d.get("datasourceUid")
            if uid != alerting.EXPRESSION_UID and uid not in provisioned:
                problems.append(f"{rel} rule '{rule.get('title')}' query {d.get('refId')}: datasource uid '{uid}' is not provisioned")
    for uid, ds in provisioned.items():
        for field in (ds.get("jsonData") or {}).get("derivedFields", []):
            if field.get("datasourceUid") and field["datasourceUid"] not in provisioned:
                problems.append(f"datasource {uid} derived field '{field.get('name')}': uid '{field['datasourceUid']}' is not provisioned")
        for corr in ds.get("correlations") or []:
            if corr.get("targetUID") not in provisioned:
                problems.append(f"datasource {uid} correlation '{corr.get('label')}': uid '{corr.get('targetUID')}' is not provisioned")
    return problems


# --------------------------------------------------------------------------- tools


def check_compose(rendered: Path, spec, env_name: str, secrets: Mapping[str, str]) -> CheckResult:
    from obskit.secrets import compose_environment
    from obskit.tools import compose

    compose_file = rendered / "compose" / "docker-compose.yaml"
    try:
        model = compose.validate(compose_file, compose_environment(spec, env_name, secrets))
    except ToolNotFound as exc:
        return CheckResult("docker compose config", "skip", str(exc))
    except ObskitError as exc:
        return CheckResult("docker compose config", "fail", str(exc))
    return CheckResult("docker compose config", "pass", f"{len(model.get('services', {}))} services valid")


def check_nginx(loop) -> CheckResult:
    from obskit.tools import nginx

    if which("nginx") is None:
        return CheckResult("nginx -t", "skip", "nginx is not installed (apt-get install nginx)")
    try:
        prepared = nginx.prepare(loop.rendered / "configs" / "gateway", loop.env["gateway"])
        nginx.test_config(prepared.conf)
    except ObskitError as exc:
        return CheckResult("nginx -t", "fail", str(exc))
    return CheckResult("nginx -t", "pass", "gateway config is valid (loopback bindings)")


# Each component's own config check, run on the rendered file with the process bindings.
BINARY_CHECKS = {
    "loki": lambda exe, loop: [exe, f"-config.file={loop.config('loki', 'loki.yaml')}", "-config.expand-env=true", "-verify-config"],
    "mimir": lambda exe, loop: [exe, f"-config.file={loop.config('mimir', 'mimir.yaml')}", "-config.expand-env=true", "-print.config"],
    "otelcol": lambda exe, loop: [exe, "validate", f"--config={loop.config('otelcol', 'config.yaml')}"],
}
BINARY_SERVICE = {"loki": "loki", "mimir": "mimir-1", "otelcol": "otelcol"}


def check_binary(component: str, loop) -> CheckResult:
    from obskit.components import components

    programs = components(loop.spec.grafana.sub_path)[component].binaries
    exe = next(filter(None, map(which, programs)), None)
    name = f"{programs[0]} config check"
    if exe is None:
        return CheckResult(name, "skip", f"{' or '.join(programs)} is not on PATH")
    name = f"{Path(exe).name} config check"
    result = run(BINARY_CHECKS[component](exe, loop), env=loop.env[BINARY_SERVICE[component]], check=False, timeout=120)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        return CheckResult(name, "fail", f"exit {result.returncode}: {tail}")
    return CheckResult(name, "pass", "accepted by the binary")


# --------------------------------------------------------------------------- images


def image_problems(files: Mapping[str, bytes]) -> list[str]:
    """Each component Dockerfile builds FROM its pinned base and copies only what was
    rendered under configs/ (the one folder the build context's .dockerignore admits)."""
    from obskit import images

    problems = []
    dockerfiles = sorted(rel for rel in files if rel.startswith("images/") and rel.endswith("/Dockerfile"))
    if dockerfiles and files.get(".dockerignore") != images.DOCKERIGNORE:
        problems.append(".dockerignore must admit configs/ only")
    for rel in dockerfiles:
        text = files[rel].decode()
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        if len(lines) < 2 or not lines[0].startswith("ARG BASE=") or lines[1] != "FROM ${BASE}":
            problems.append(f"{rel}: must start with ARG BASE=<pinned image> and FROM ${{BASE}}")
        for src, _dest in images.copies(text):
            if not src.startswith("configs/") or not (src in files or any(f.startswith(src + "/") for f in files)):
                problems.append(f"{rel}: COPY {src} is not a rendered file or folder under configs/")
    return problems


# --------------------------------------------------------------------------- entry point


def check_files(resolved: ResolvedSpec, env_name: str, files: Files, workdir: Path) -> list[CheckResult]:
    from obskit import loopback
    from obskit.spec.model import ComposeEnvironment

    spec = resolved.spec
    results: list[CheckResult] = []
    problems = parse_problems(files)
    results.append(CheckResult("parse", "fail" if problems else "pass", "; ".join(problems) or f"{len(files)} files parse"))
    problems = binding_problems(files, bindings.services(spec, env_name))
    results.append(
        CheckResult("bindings", "fail" if problems else "pass", "; ".join(problems) or "every reference bound, no binding unused")
    )
    rendered = workdir / "env"
    write_environment(files, rendered)
    loop = loopback.plan(spec, rendered, workdir / "loopback", env_name=env_name)
    if isinstance(spec.environments[env_name], ComposeEnvironment):
        results.append(check_compose(rendered, spec, env_name, loop.secrets))
    results.append(check_nginx(loop))
    results.append(check_promql(shipped_promql(files), workdir))
    results.append(check_logql(shipped_logql(files), files))
    problems = image_problems(files)
    count = sum(1 for rel in files if rel.startswith("images/"))
    results.append(CheckResult("images", "fail" if problems else "pass",
                               "; ".join(problems) or f"{count} Dockerfiles copy only rendered configs"))
    problems = datasource_problems(files)
    results.append(CheckResult("datasource uids", "fail" if problems else "pass",
                               "; ".join(problems) or "every dashboard and rule reference resolves"))
    for tool in BINARY_CHECKS:
        results.append(check_binary(tool, loop))
    return results


def check_environment(resolved: ResolvedSpec, env_name: str) -> list[CheckResult]:
    files = render(resolved, env_name)
    with tempfile.TemporaryDirectory(prefix="obskit-check-") as tmp:
        return check_files(resolved, env_name, files, Path(tmp))
