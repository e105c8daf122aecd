"""Alerting from the spec: rules, contact points, routing and mute timings, as rendered
for Grafana; the checks that guard them (promtool, LogQL, datasource uids); parity."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from obskit import alerting, checks
from obskit.errors import SpecErrors
from obskit.render import render
from obskit.spec.load import load_spec

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"
RULES = alerting.SPEC_RULES
NOTIFICATIONS = alerting.NOTIFICATIONS


def default_files(env: str = "local"):
    return render(load_spec(None, environ={}, use_default_file=False), env)


def fixture_files(env: str = "local"):
    return render(load_spec(FIXTURE, environ={}), env)


def rules_by_title(files) -> dict[str, dict]:
    out = {}
    for rel in (RULES, alerting.STACK_RULES):
        for group in yaml.safe_load(files[rel])["groups"]:
            for rule in group["rules"]:
                out[rule["title"]] = rule | {"_group": group}
    return out


# --------------------------------------------------------------------------- rules


def test_reference_rule_cpu_above_80_percent_for_5m_evaluated_every_minute():
    rule = rules_by_title(default_files())["HostCpuHigh"]
    assert rule["_group"]["interval"] == "1m"
    assert rule["_group"]["folder"] == "obskit-platform"
    assert rule["for"] == "5m"
    by_ref = {d["refId"]: d for d in rule["data"]}
    # The collector's hostmetrics receiver sends host CPU into the operators' tenant, as
    # job="host", instance=<host name>: the rule reads it there, grouped by those labels.
    assert by_ref["A"]["datasourceUid"] == "obskit-ops-metrics"
    assert by_ref["A"]["model"]["expr"] == (
        '(1 - avg by (job, instance) (system_cpu_utilization{state="idle"})) '
        'or max by (job, instance) (ecs_task_cpu_utilized / ecs_task_cpu_reserved)')  # ECS: the task's CPU
    assert by_ref["C"]["model"]["conditions"][0]["evaluator"] == {"type": "gt", "params": [0.8]}
    assert rule["condition"] == "C"
    assert rule["noDataState"] == "NoData"  # no host metrics is not a healthy host
    assert rule["labels"] == {"severity": "warning", "team": "platform", "tenant": "ops"}
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


def test_every_rule_has_summary_description_runbook_severity_and_team():
    for files in (default_files(), fixture_files()):
        rules = rules_by_title(files)
        for title, rule in rules.items():
            assert title[0].isupper() and "-" not in title and " " not in title, title
            for key in ("summary", "description", "runbook_url"):
                assert rule["annotations"].get(key), (title, key)
            assert rule["labels"]["severity"] in ("critical", "warning", "info"), title
            assert rule["labels"]["team"], title
            assert rule["_group"]["folder"] == f"obskit-{rule['labels']['team']}", title


def test_built_in_stack_rules_cover_the_named_conditions():
    rules = rules_by_title(default_files())
    stack = {t for t, r in rules.items() if r["labels"]["team"] == "stack"}
    assert {"StackComponentDown", "MimirSamplesRejected", "LokiLinesRejected", "CollectorDataDropped",
            "GatewayErrorRatioHigh", "ObjectStoreErrors"} <= stack
    # A component down must fire when no data arrives at all (the collector itself is down).
    assert rules["StackComponentDown"]["noDataState"] == "Alerting"
    gateway = rules["GatewayErrorRatioHigh"]["data"][0]
    assert gateway["datasourceUid"] == "obskit-ops-logs"


def test_user_rules_in_both_languages_with_their_own_folder_group_and_labels():
    rules = rules_by_title(fixture_files())
    checkout = rules["CheckoutErrorsHigh"]
    assert checkout["data"][0]["datasourceUid"] == "obskit-web-logs"
    assert checkout["data"][0]["model"]["queryType"] == "instant"
    assert checkout["_group"]["name"] == "payments-1m"
    assert checkout["labels"] == {"component": "checkout", "severity": "critical", "team": "payments", "tenant": "web"}
    queue = rules["QueueBacklogLow"]
    assert queue["_group"]["interval"] == "30s"
    assert queue["data"][0]["datasourceUid"] == "obskit-apps-metrics"  # the first tenant
    assert queue["data"][2]["model"]["conditions"][0]["evaluator"] == {"type": "lt", "params": [0.1]}


def test_dollar_signs_escaped_only_where_grafana_expands_variables(write_spec):
    # Grafana 13 expands $VARS in rule labels (so a literal $ is written $$) but not in
    # annotations or queries, where Go-template variables such as $labels must stay as written.
    rule = rules_by_title(fixture_files())["CheckoutErrorsHigh"]
    assert rule["annotations"]["summary"] == "Checkout logs more than 10 errors in 5 minutes on {{ $labels.service_name }}"
    assert "$$" not in json.dumps(rule["data"])
    path = write_spec(
        "alerting:\n  rules:\n    - {name: CostHigh, expr: 'sum(cost) > 5', severity: info, team: core,"
        " summary: 'cost {{ $value }}', description: d, runbook_url: https://x.test/, labels: {note: 'over $5'}}\n"
    )
    rule = rules_by_title(render(load_spec(path, environ={}), "local"))["CostHigh"]
    assert rule["labels"]["note"] == "over $$5"
    assert rule["annotations"]["summary"] == "cost {{ $value }}"


def test_runbook_links_into_grafana_are_paths_under_its_sub_path_and_name_a_runbook_panel():
    files = default_files()
    runbooks = json.loads(files["configs/grafana/dashboards/runbooks.json"])
    panels = {f"panel-{p['id']}": p["title"] for p in runbooks["panels"]}
    for title, rule in rules_by_title(files).items():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("/grafana/d/obskit-runbooks/runbooks?viewPanel="), title
        assert panels[url.rsplit("viewPanel=", 1)[1]] == title
    # Notifications complete the path with the origin of the alert's Grafana link.
    templates = files[f"{alerting.ALERTING_DIR}/templates.yaml"].decode()
    assert '{{ if match "^/" .Annotations.runbook_url }}' in templates and ".GeneratorURL" in templates


def test_alerts_list_shows_stack_and_spec_rules(run_obskit):
    result = run_obskit("alerts", "list", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    rows = {r["name"]: r for r in data["rules"]}
    assert rows["HostCpuHigh"]["source"] == "spec"
    assert rows["HostCpuHigh"]["condition"] == "> 0.8"
    assert rows["HostCpuHigh"]["pending"] == "5m" and rows["HostCpuHigh"]["interval"] == "1m"
    assert rows["StackComponentDown"]["source"] == "stack"
    assert rows["StackComponentDown"]["tenant"] == "ops"
    assert rows["GatewayErrorRatioHigh"]["language"] == "logql"
    assert data["contact_points"] == []
    human = run_obskit("alerts", "list")
    assert human.returncode == 0
    assert "HostCpuHigh" in human.stdout and "no contact points declared" in human.stdout


def test_alerts_list_shows_routing(run_obskit):
    result = run_obskit("--spec", str(FIXTURE), "alerts", "list", "--json")
    assert result.returncode == 0, result.stderr
    routes = json.loads(result.stdout)["routes"]
    assert routes[0] == {"match": "severity in (critical) and team = payments", "receiver": "payments-pager",
                         "mute_timings": [], "continue": False}
    assert routes[1]["mute_timings"] == ["out-of-hours"] and routes[1]["continue"] is True
    assert routes[-1]["receiver"] == "oncall-email"


# --------------------------------------------------------------------------- notifications


def test_contact_points_of_every_kind_with_secrets_as_bound_variables(monkeypatch):
    files = fixture_files()
    doc = yaml.safe_load(files[NOTIFICATIONS])
    points = {c["name"]: c["receivers"][0] for c in doc["contactPoints"]}
    assert {p["type"] for p in points.values()} == {"email", "slack", "pagerduty", "teams", "webhook"}
    assert points["oncall-email"]["settings"]["addresses"] == "oncall@example.com;sre@example.com"
    assert points["platform-slack"]["settings"]["url"] == "$OBSKIT_CONTACT_PLATFORM_SLACK_URL"
    assert points["payments-pager"]["settings"]["integrationKey"] == "$OBSKIT_CONTACT_PAYMENTS_PAGER_INTEGRATION_KEY"
    assert points["platform-teams"]["settings"]["url"] == "$OBSKIT_CONTACT_PLATFORM_TEAMS_URL"
    webhook = points["audit-webhook"]["settings"]
    assert webhook["url"] == "$OBSKIT_CONTACT_AUDIT_WEBHOOK_URL"
    assert webhook["authorization_credentials"] == "$OBSKIT_CONTACT_AUDIT_WEBHOOK_AUTHORIZATION_CREDENTIALS"
    # Every kind uses obskit's message templates, which ship in templates.yaml.
    templates = yaml.safe_load(files[f"{alerting.ALERTING_DIR}/templates.yaml"])["templates"][0]["template"]
    for point in points.values():
        text = json.dumps(point["settings"])
        assert 'template \\"obskit.' in text
    assert '{{ define "obskit.title" -}}' in templates and '{{ define "obskit.message" -}}' in templates

    env = json.loads(files["bindings.json"])["services"]["grafana"]["env"]
    assert env["OBSKIT_CONTACT_PLATFORM_SLACK_URL"] == {"secret": "contact-platform-slack-url", "ref": "env:TEST_SLACK_WEBHOOK_URL"}
    assert env["OBSKIT_CONTACT_AUDIT_WEBHOOK_URL"] == {"value": "https://hooks.example.com/obskit"}
    assert env["GF_SMTP_PASSWORD"] == {"secret": "smtp-password", "ref": "env:TEST_SMTP_PASSWORD"}
    assert env["GF_SMTP_HOST"] == {"value": "smtp.example.com:587"}


def test_contact_secret_values_never_reach_rendered_files(tmp_path, monkeypatch):
    from obskit import bindings
    from obskit.secrets import resolve

    values = {"TEST_SLACK_WEBHOOK_URL": "https://hooks.slack.test/T0/B0/very-secret-slack",
              "TEST_PAGERDUTY_KEY": "pd-very-secret-key", "TEST_TEAMS_URL": "https://teams.test/very-secret-teams",
              "TEST_WEBHOOK_TOKEN": "very-secret-token", "TEST_SMTP_PASSWORD": "very-secret-smtp"}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    resolved = load_spec(FIXTURE, environ={})
    files = render(resolved, "local")
    blob = b"".join(files.values())
    for v in values.values():
        assert v.encode() not in blob
    # ... they reach the compose run through its environment instead.
    catalogue = bindings.secret_catalogue(resolved.spec, "local")
    assert catalogue["contact-payments-pager-integration-key"].env_var == "TEST_PAGERDUTY_KEY"
    assert resolve(catalogue["contact-payments-pager-integration-key"], {}) == "pd-very-secret-key"


def test_policy_routes_by_severity_and_team_with_a_mute_timing():
    doc = yaml.safe_load(fixture_files()[NOTIFICATIONS])
    policy = doc["policies"][0]
    assert policy["receiver"] == "oncall-email"
    assert policy["group_by"] == ["grafana_folder", "alertname"]
    first, second, third, fourth = policy["routes"]
    assert first == {"receiver": "payments-pager",
                     "object_matchers": [["severity", "=", "critical"], ["team", "=", "payments"]]}
    assert second["object_matchers"] == [["severity", "=~", "warning|info"]]
    assert second["mute_time_intervals"] == ["out-of-hours"] and second["continue"] is True
    assert third["object_matchers"] == [["team", "=", "platform"]]
    assert fourth["object_matchers"] == [["audit", "=", "yes"]]
    mute = doc["muteTimes"][0]
    assert mute["name"] == "out-of-hours"
    assert mute["time_intervals"] == [{
        "location": "Europe/Berlin", "weekdays": ["monday:friday"],
        "times": [{"start_time": "18:00", "end_time": "24:00"}, {"start_time": "00:00", "end_time": "08:00"}],
    }]


def test_no_contact_points_means_no_notifications_file():
    assert NOTIFICATIONS not in default_files()


# --------------------------------------------------------------------------- parity


def test_alerting_files_are_byte_identical_in_every_environment():
    local, prod = fixture_files("local"), fixture_files("prod")
    grafana = [rel for rel in local if rel.startswith("configs/grafana/")]
    assert any(rel.startswith(alerting.ALERTING_DIR) for rel in grafana)
    for rel in grafana:
        assert local[rel] == prod[rel], rel
    # What differs is bound per environment.
    prod_env = json.loads(prod["bindings.json"])["services"]["grafana"]["env"]
    assert prod_env["GF_SERVER_ROOT_URL"] == {"value": "https://obs.example.com/grafana/"}


def test_rendering_alerting_is_deterministic():
    assert fixture_files() == fixture_files()


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "text, where, what",
    [
        ("alerting:\n  rules:\n    - {name: cpu-high, expr: up, severity: warning, team: core, summary: s, description: d, runbook_url: https://x.test/}\n",
         "alerting.rules[0].name", "rule names are CamelCase"),
        ("alerting:\n  rules:\n    - {name: CpuHigh, expr: up, severity: warning, team: stack, summary: s, description: d, runbook_url: https://x.test/}\n",
         "alerting.rules[0].team", "reserved for obskit's stack rules"),
        ("alerting:\n  rules:\n    - {name: CpuHigh, expr: up, severity: urgent, team: core, summary: s, description: d, runbook_url: https://x.test/}\n",
         "alerting.rules[0].severity", ""),
        ("alerting:\n  rules:\n    - {name: CpuHigh, expr: up, severity: info, team: core, summary: s, description: d, runbook_url: ftp://x}\n",
         "alerting.rules[0].runbook_url", "is not an http(s) URL"),
        ("alerting:\n  rules:\n    - {name: CpuHigh, tenant: nobody, expr: up, severity: info, team: core, summary: s, description: d, runbook_url: https://x.test/}\n",
         "alerting.rules[0].tenant", "reads tenant 'nobody'"),
        ("alerting:\n  contact_points:\n    - {name: hook, type: webhook, url: https://x.test/}\n",
         "alerting.policy", "no policy routes alerts"),
        ("alerting:\n  contact_points:\n    - {name: hook, type: webhook, url: https://x.test/}\n  policy: {receiver: nope}\n",
         "alerting.policy.receiver", "receiver 'nope' is not a declared contact point"),
        ("alerting:\n  contact_points:\n    - {name: hook, type: webhook, url: https://x.test/}\n  policy:\n    receiver: hook\n    routes: [{receiver: hook, team: web, mute_timings: [nights]}]\n",
         "alerting.policy.routes[0].mute_timings", "mute timing 'nights' is not declared"),
        ("alerting:\n  contact_points:\n    - {name: hook, type: email, addresses: [a@b.c]}\n  policy: {receiver: hook}\n",
         "alerting.smtp", "needs alerting.smtp"),
        ("alerting:\n  contact_points:\n    - {name: hook, type: slack, url: https://hooks.slack.com/services/T/B/secret}\n",
         "alerting.contact_points[0].url", "plain text"),
        ("alerting:\n  contact_points:\n    - {name: hook, type: pagerduty}\n",
         "alerting.contact_points[0].integration_key", ""),
        ("alerting:\n  contact_points:\n    - {name: hook, type: sms, url: https://x.test}\n",
         "alerting.contact_points[0]", ""),
        ("alerting:\n  mute_timings:\n    - {name: nights, times: [{start: '25:00', end: '06:00'}]}\n",
         "alerting.mute_timings[0].times[0].start", ""),
        ("alerting:\n  contact_points:\n    - {name: hook, type: webhook, url: https://x.test/}\n  policy:\n    receiver: hook\n    routes: [{receiver: hook}]\n",
         "alerting.policy.routes[0]", "at least one of severity, team or matchers"),
    ],
)
def test_bad_alerting_input_gets_one_clear_message(write_spec, text, where, what):
    path = write_spec(text)
    with pytest.raises(SpecErrors) as info:
        load_spec(path, environ={})
    message = str(info.value)
    assert f": {where}" in message, message
    assert what in message
    assert "https://hooks.slack.com/services/T/B/secret" not in message  # secrets are never echoed


def test_user_tenant_named_ops_is_refused_when_operators_use_another_name(write_spec):
    path = write_spec("tenants:\n  - name: ops\noperators:\n  tenant: admins\n")
    with pytest.raises(SpecErrors, match="tenant name 'ops' is reserved"):
        load_spec(path, environ={})


def test_rule_for_key_is_spelled_for_in_the_spec(write_spec):
    path = write_spec(
        "alerting:\n  rules:\n    - {name: CpuHigh, expr: up, severity: info, team: core, summary: s, description: d,"
        " runbook_url: https://x.test/, pending: 5m}\n"
    )
    with pytest.raises(SpecErrors) as info:
        load_spec(path, environ={})
    assert "unknown key 'pending'" in str(info.value)
    assert "did you mean 'for'?" in str(info.value) or "for" in str(info.value)


# --------------------------------------------------------------------------- checks


def test_every_rule_query_passes_promtool_or_the_logql_check(tmp_path):
    files = fixture_files()
    queries = list(alerting.expressions(files))
    langs = {lang for _, lang, _ in queries}
    assert langs == {"promql", "logql"}
    promql = [(w, e) for w, lang, e in queries if lang == "promql"]
    result = checks.check_promql(promql, tmp_path)
    if result.status == "skip":
        pytest.skip(result.detail)
    assert result.status == "pass", result.detail
    assert checks.check_logql(checks.shipped_logql(files), files).status == "pass"


def test_promtool_catches_a_broken_rule(write_spec, tmp_path):
    path = write_spec(
        "alerting:\n  rules:\n    - {name: CpuHigh, expr: 'sum(rate(x[5m])', severity: info, team: core,"
        " summary: s, description: d, runbook_url: https://x.test/}\n"
    )
    files = render(load_spec(path, environ={}), "local")
    result = checks.check_promql(checks.shipped_promql(files), tmp_path)
    if result.status == "skip":
        pytest.skip(result.detail)
    assert result.status == "fail"
    assert "rule 'CpuHigh'" in result.detail


def test_logql_rule_must_be_a_metric_query(write_spec):
    path = write_spec(
        "alerting:\n  rules:\n    - {name: ErrorsSeen, language: logql, expr: '{app=\"x\"} |= \"error\"', severity: info,"
        " team: core, summary: s, description: d, runbook_url: https://x.test/}\n"
    )
    files = render(load_spec(path, environ={}), "local")
    result = checks.check_logql(checks.shipped_logql(files), files)
    assert result.status == "fail"
    assert "rule 'ErrorsSeen'" in result.detail and "needs a metric query" in result.detail


def collector_name_problems(expr: str) -> list[str]:
    """Metric names the stack cannot produce. The collector's own counters carry no _total
    (its Prometheus reader sets without_type_suffix); it has no process_* metrics (its own
    are otelcol_process_*); and it runs no nginx receiver."""
    problems = [f"{m}: the collector's counters have no _total" for m in re.findall(r"\botelcol_\w+_total\b", expr)]
    problems += [f"{m}: the collector exports otelcol_process_* instead"
                 for m in re.findall(r"\bprocess_\w+\{[^}]*otelcol[^}]*\}", expr)]
    problems += [f"{m}: no nginx receiver in the collector" for m in re.findall(r"\bnginx_\w+", expr)]
    return problems


def test_shipped_queries_use_metric_names_the_collector_really_exports():
    files = default_files()
    queries = checks.shipped_queries(files)
    assert [(where, p) for where, _lang, expr in queries for p in collector_name_problems(expr)] == []
    text = " ".join(expr for _where, _lang, expr in queries)
    for name in ("otelcol_process_memory_rss", "otelcol_process_cpu_seconds", "otelcol_exporter_send_failed_log_records",
                 "otelcol_exporter_enqueue_failed_metric_points", "otelcol_receiver_refused_metric_points"):
        assert name in text, name


@pytest.mark.parametrize("expr", [
    "sum by (exporter) (rate(otelcol_exporter_send_failed_log_records_total[5m]))",
    'process_resident_memory_bytes{job=~"loki|mimir|grafana|otelcol"}',
    "sum by (state) (nginx_connections_current)",
])
def test_the_name_check_catches_what_the_stack_never_exports(expr):
    assert collector_name_problems(expr)


def test_datasource_references_all_resolve_and_a_broken_one_is_named():
    files = default_files()
    assert checks.datasource_problems(files) == []
    broken = dict(files)
    dash = json.loads(broken["configs/grafana/dashboards/stack-health.json"])
    dash["panels"][1]["targets"][0]["datasource"] = {"type": "prometheus", "uid": "obskit-nobody-metrics"}
    broken["configs/grafana/dashboards/stack-health.json"] = json.dumps(dash).encode()
    rules = yaml.safe_load(broken[RULES])
    rules["groups"][0]["rules"][0]["data"][0]["datasourceUid"] = "obskit-typo-metrics"
    broken[RULES] = yaml.safe_dump(rules).encode()
    problems = checks.datasource_problems(broken)
    assert any("'obskit-nobody-metrics' is not provisioned" in p for p in problems)
    assert any("rule 'HostCpuHigh'" in p and "'obskit-typo-metrics'" in p for p in problems)


def test_dashboards_ship_unchanged_with_stable_uids():
    files = default_files()
    shipped = sorted((REPO / "configs" / "grafana" / "dashboards").glob("*.json"))
    assert {p.stem for p in shipped} >= {"stack-health", "service-overview", "alert-status", "runbooks"}
    uids = set()
    for path in shipped:
        rel = f"configs/grafana/dashboards/{path.name}"
        assert files[rel] == path.read_bytes()  # copied, never templated
        dash = json.loads(path.read_bytes())
        assert dash["uid"].startswith("obskit-") and dash["uid"] not in uids
        uids.add(dash["uid"])
        assert "id" not in dash  # numeric ids are gone in Grafana 13


def test_service_overview_puts_metrics_and_logs_of_one_service_on_one_time_axis():
    dash = json.loads(default_files()["configs/grafana/dashboards/service-overview.json"])
    names = {v["name"]: v for v in dash["templating"]["list"]}
    assert names["service_name"]["type"] == "query"
    kinds = {p["datasource"]["type"] for p in dash["panels"]}
    assert kinds == {"prometheus", "loki"}
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    assert "$service_name" in exprs and "histogram_quantile(0.99" in exprs
    assert dash["graphTooltip"] == 1  # shared crosshair: one time axis


def test_stack_health_reads_the_operators_datasources_only():
    dash = json.loads(default_files()["configs/grafana/dashboards/stack-health.json"])
    uids = {t["datasource"]["uid"] for p in dash["panels"] for t in p.get("targets", [])}
    assert uids == {"obskit-ops-metrics", "obskit-ops-logs"}
    titles = " ".join(p["title"] for p in dash["panels"])
    for needed in ("per tenant", "Rejected", "401, 403, 429, 5xx", "up", "memory", "queue", "Object store errors"):
        assert needed in titles, needed


def test_the_starter_notification_example_is_valid_when_uncommented(tmp_path):
    from obskit.starter import starter_text

    lines, out, inside = starter_text().splitlines(), [], False
    for line in lines:
        if line.startswith("  # contact_points:"):
            inside = True
        if inside and line.startswith("  # "):
            line = "  " + line[4:]
        elif inside and not line.startswith("  #"):
            inside = False
        out.append(line)
    path = tmp_path / "obskit.yaml"
    path.write_text("\n".join(out) + "\n")
    spec = load_spec(path, environ={}).spec
    assert {c.type for c in spec.alerting.contact_points} == {"email", "slack", "pagerduty", "teams", "webhook"}
    assert spec.alerting.policy.routes[2].mute_timings == ["out-of-hours"]
