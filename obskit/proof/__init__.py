"""Data for proving the shipped queries on a running stack.

``empty_at_rest.yaml`` lists the shipped PromQL and LogQL expressions that are empty on
a healthy idle stack by design, each with the reason and the scenario that makes it
return data. Anything shipped and not listed must return data at rest.
"""

from __future__ import annotations

from importlib import resources

import yaml

# The scenarios the stack proof knows how to run (a closed set).
SCENARIOS = frozenset({
    "cpu_burn",               # burn CPU on the host for a while
    "stop_loki",              # stop the Loki process
    "flood",                  # exceed a tenant's gateway rate limit: 429s
    "bad_push",               # push what Loki or Mimir reject (too old, invalid labels)
    "gateway_5xx",            # a backend down behind the gateway
    "collector_export_fail",  # the collector cannot export
    "collector_queue_full",   # an exporter's sending queue (5000 requests) overflows
    "object_store_errors",    # the S3 API stops
    "alert_firing",           # an alert fires
})

ENTRY_KEYS = ("where", "expr", "reason", "scenario")


def load_empty_at_rest() -> list[dict[str, str]]:
    """The entries of ``empty_at_rest.yaml``: dicts with where, expr, reason, scenario.

    ``where`` is ``"<dashboard uid>/<panel title>"`` or ``"rule/<RuleName>"``; ``expr`` is
    the expression exactly as shipped."""
    text = resources.files(__name__).joinpath("empty_at_rest.yaml").read_text(encoding="utf-8")
    entries = (yaml.safe_load(text) or {}).get("entries") or []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or sorted(entry) != sorted(ENTRY_KEYS):
            raise ValueError(f"empty_at_rest.yaml entries[{i}]: expected exactly the keys {', '.join(ENTRY_KEYS)}")
        if not all(isinstance(entry[k], str) and entry[k].strip() for k in ENTRY_KEYS):
            raise ValueError(f"empty_at_rest.yaml entries[{i}]: every value must be a non-empty string")
    return entries


def shipped_expressions(files) -> list[dict[str, str]]:
    """Every query in the rendered dashboards and alert rules, as the proof names them:
    dicts with ``where`` (as in ``empty_at_rest.yaml``), ``language`` (promql or logql),
    ``datasource`` (the uid the query runs against; a dashboard variable such as
    ``${metrics}`` stays as written) and ``expr``. ``files`` maps rendered paths to bytes."""
    import json

    from obskit import alerting

    out: list[dict[str, str]] = []
    for rel in sorted(files):
        if not (rel.startswith("configs/grafana/dashboards/") and rel.endswith(".json")):
            continue
        dash = json.loads(files[rel])
        stack = list(dash.get("panels", []))
        while stack:
            panel = stack.pop(0)
            stack[:0] = panel.get("panels", [])
            for target in panel.get("targets", []):
                ds = target.get("datasource") or panel.get("datasource") or {}
                kind = ds.get("type") if isinstance(ds, dict) else None
                if kind in ("prometheus", "loki") and target.get("expr"):
                    out.append({"where": f"{dash['uid']}/{panel.get('title', '')}",
                                "language": "promql" if kind == "prometheus" else "logql",
                                "datasource": str(ds.get("uid", "")), "expr": target["expr"]})
    for _rel, _group, rule in alerting.provisioned_rules(files):
        for query in rule.get("data", []):
            uid = query.get("datasourceUid", "")
            if uid != alerting.EXPRESSION_UID:
                out.append({"where": f"rule/{rule['title']}", "language": alerting.query_language(uid),
                            "datasource": uid, "expr": query["model"]["expr"]})
    return out
