"""Grafana ignores unknown keys in provisioning files: a misspelt key is lost silently.
These tests hold every key obskit writes against the keys Grafana 13 reads, taken from
its sources (the v1 structs of pkg/services/provisioning/{datasources,dashboards,alerting},
the Alertmanager route and time-interval types they decode into, and the settings structs
of each notifier integration in grafana/alerting)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from obskit import alerting
from obskit.render import render
from obskit.spec.load import load_spec

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"

ANY = object()  # a free-form map (jsonData, model, labels, annotations, ...)

DATASOURCE = {
    "orgId", "orgName", "version", "name", "type", "access", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "correlations", "jsonData", "secureJsonData",
    "editable", "uid",
}
DATASOURCES_FILE = {"apiVersion": None, "datasources": [DATASOURCE], "deleteDatasources": ANY, "prune": None}
CORRELATION = {"targetUID", "label", "description", "type", "config", "provisioned"}
CORRELATION_CONFIG = {"type", "target", "field", "transformations"}
TRANSFORMATION = {"type", "field", "expression", "variable", "mapValue"}
LOKI_DERIVED_FIELD = {"name", "matcherRegex", "matcherType", "url", "urlDisplayLabel", "datasourceUid"}
# A Loki datasource's jsonData: Grafana core's DataSourceJsonData (manageAlerts, ...), the
# HTTP client settings every HTTP datasource reads, and the Loki plugin's own options.
LOKI_JSON_DATA = {
    "authType", "defaultRegion", "profile", "manageAlerts", "alertmanagerUid", "disableGrafanaCache",
    "tlsAuth", "tlsAuthWithCACert", "tlsSkipVerify", "serverName", "timeout", "keepCookies", "oauthPassThru",
    "enableSecureSocksProxy", "maxLines", "derivedFields", "predefinedOperations",
}

DASHBOARD_PROVIDER = {
    "orgId", "name", "type", "folder", "folderUid", "editable", "options", "disableDeletion",
    "updateIntervalSeconds", "allowUiUpdates",
}
DASHBOARD_OPTIONS = {"path", "foldersFromFilesStructure"}

ALERTING_FILE = {
    "apiVersion", "groups", "deleteRules", "contactPoints", "deleteContactPoints", "policies",
    "resetPolicies", "muteTimes", "deleteMuteTimes", "templates", "deleteTemplates",
}
RULE_GROUP = {"orgId", "name", "folder", "interval", "rules"}
RULE = {
    "uid", "title", "condition", "data", "dasboardUid", "dashboardUid", "panelId", "noDataState",
    "execErrState", "for", "keepFiringFor", "missing_series_evals_to_resolve", "annotations", "labels",
    "isPaused", "notification_settings", "record",
}
QUERY = {"refId", "queryType", "relativeTimeRange", "datasourceUid", "model"}
TIME_RANGE = {"from", "to"}
NO_DATA_STATES = {"NoData", "Alerting", "OK", "KeepLast"}
EXEC_ERR_STATES = {"Alerting", "Error", "OK", "KeepLast"}

CONTACT_POINT = {"orgId", "name", "receivers"}
RECEIVER = {"uid", "type", "settings", "disableResolveMessage"}
SETTINGS = {
    "email": {"addresses", "singleEmail", "message", "subject"},
    "slack": {"url", "token", "recipient", "username", "icon_emoji", "icon_url", "mentionChannel",
              "mentionUsers", "mentionGroups", "title", "text", "color", "endpointUrl"},
    "pagerduty": {"integrationKey", "severity", "class", "component", "group", "summary", "source",
                  "client", "client_url", "details", "url"},
    "teams": {"url", "title", "sectionTitle", "message"},
    "webhook": {"url", "httpMethod", "maxAlerts", "authorization_scheme", "authorization_credentials",
                "username", "password", "title", "message", "tlsConfig", "hmacConfig", "headers", "payload"},
}
REQUIRED_SETTINGS = {"email": {"addresses"}, "pagerduty": {"integrationKey"}, "teams": {"url"}, "webhook": {"url"}}
ROUTE = {
    "orgId", "receiver", "group_by", "continue", "object_matchers", "matchers", "match", "match_re",
    "mute_time_intervals", "active_time_intervals", "group_wait", "group_interval", "repeat_interval", "routes",
}
MUTE_TIME = {"orgId", "name", "time_intervals"}
TIME_INTERVAL = {"times", "weekdays", "days_of_month", "months", "years", "location"}
TIMES = {"start_time", "end_time"}
TEMPLATE = {"orgId", "name", "template"}
PLUGINS_FILE = {"apiVersion", "apps"}
APP = {"type", "org_id", "org_name", "disabled", "jsonData", "secureJsonData"}


def problems_in(rel: str, doc: dict) -> list[str]:
    """Every key Grafana would not read, as 'file: path: key'."""
    found: list[str] = []

    def keys(obj, allowed, where):
        if not isinstance(obj, dict):
            found.append(f"{rel}: {where}: expected a mapping")
            return
        for key in obj:
            if key not in allowed:
                found.append(f"{rel}: {where}: unknown key '{key}'")

    if "/datasources/" in rel:
        keys(doc, set(DATASOURCES_FILE), "(top)")
        for i, ds in enumerate(doc.get("datasources", [])):
            keys(ds, DATASOURCE, f"datasources[{i}]")
            for j, corr in enumerate(ds.get("correlations") or []):
                keys(corr, CORRELATION, f"datasources[{i}].correlations[{j}]")
                keys(corr.get("config", {}), CORRELATION_CONFIG, f"datasources[{i}].correlations[{j}].config")
                for k, tr in enumerate(corr.get("config", {}).get("transformations", [])):
                    keys(tr, TRANSFORMATION, f"datasources[{i}].correlations[{j}].config.transformations[{k}]")
            if ds.get("type") == "loki":
                keys(ds.get("jsonData") or {}, LOKI_JSON_DATA, f"datasources[{i}].jsonData")
            for j, field in enumerate((ds.get("jsonData") or {}).get("derivedFields", [])):
                keys(field, LOKI_DERIVED_FIELD, f"datasources[{i}].jsonData.derivedFields[{j}]")
    elif "/plugins/" in rel:
        keys(doc, PLUGINS_FILE, "(top)")
        for i, app in enumerate(doc.get("apps") or []):
            keys(app, APP, f"apps[{i}]")
    elif "/dashboards/" in rel:
        keys(doc, {"apiVersion", "providers"}, "(top)")
        for i, provider in enumerate(doc.get("providers", [])):
            keys(provider, DASHBOARD_PROVIDER, f"providers[{i}]")
            keys(provider.get("options", {}), DASHBOARD_OPTIONS, f"providers[{i}].options")
    elif "/alerting/" in rel:
        keys(doc, ALERTING_FILE, "(top)")
        for g, group in enumerate(doc.get("groups", [])):
            keys(group, RULE_GROUP, f"groups[{g}]")
            for r, rule in enumerate(group.get("rules", [])):
                at = f"groups[{g}].rules[{r}]"
                keys(rule, RULE, at)
                if rule.get("noDataState") not in NO_DATA_STATES:
                    found.append(f"{rel}: {at}: noDataState {rule.get('noDataState')!r}")
                if rule.get("execErrState") not in EXEC_ERR_STATES:
                    found.append(f"{rel}: {at}: execErrState {rule.get('execErrState')!r}")
                for q, query in enumerate(rule.get("data", [])):
                    keys(query, QUERY, f"{at}.data[{q}]")
                    if "relativeTimeRange" in query:
                        keys(query["relativeTimeRange"], TIME_RANGE, f"{at}.data[{q}].relativeTimeRange")
        for c, point in enumerate(doc.get("contactPoints", [])):
            keys(point, CONTACT_POINT, f"contactPoints[{c}]")
            for r, receiver in enumerate(point.get("receivers", [])):
                at = f"contactPoints[{c}].receivers[{r}]"
                keys(receiver, RECEIVER, at)
                kind = receiver.get("type")
                if kind not in SETTINGS:
                    found.append(f"{rel}: {at}: unknown type {kind!r}")
                    continue
                keys(receiver.get("settings", {}), SETTINGS[kind], f"{at}.settings")
                missing = REQUIRED_SETTINGS.get(kind, set()) - set(receiver.get("settings", {}))
                if missing:
                    found.append(f"{rel}: {at}.settings: missing {sorted(missing)}")

        def route(r, where):
            keys(r, ROUTE, where)
            for i, child in enumerate(r.get("routes", [])):
                route(child, f"{where}.routes[{i}]")

        for p, policy in enumerate(doc.get("policies", [])):
            route(policy, f"policies[{p}]")
        for m, mute in enumerate(doc.get("muteTimes", [])):
            keys(mute, MUTE_TIME, f"muteTimes[{m}]")
            for i, interval in enumerate(mute.get("time_intervals", [])):
                keys(interval, TIME_INTERVAL, f"muteTimes[{m}].time_intervals[{i}]")
                for t, times in enumerate(interval.get("times", [])):
                    keys(times, TIMES, f"muteTimes[{m}].time_intervals[{i}].times[{t}]")
        for t, template in enumerate(doc.get("templates", [])):
            keys(template, TEMPLATE, f"templates[{t}]")
    return found


def provisioning_files(files) -> dict[str, dict]:
    return {rel: yaml.safe_load(data) for rel, data in files.items()
            if rel.startswith("configs/grafana/provisioning/") and rel.endswith((".yaml", ".yml"))}


@pytest.fixture(scope="module")
def everything():
    """The fixture spec uses every alerting feature; the default adds nothing it lacks."""
    return render(load_spec(FIXTURE, environ={}), "local")


def test_every_provisioning_key_is_one_grafana_reads(everything):
    docs = provisioning_files(everything)
    # plugins/ holds no app, but Grafana logs an error at start when the folder is missing.
    assert {rel.split("/")[3] for rel in docs} == {"datasources", "dashboards", "alerting", "plugins"}
    problems = [p for rel, doc in docs.items() for p in problems_in(rel, doc)]
    assert problems == []


@pytest.mark.parametrize(
    "rel, mutate, expected",
    [
        ("datasources/obskit.yaml", lambda d: d["datasources"][0].__setitem__("jsonDta", {}), "unknown key 'jsonDta'"),
        ("datasources/obskit.yaml", lambda d: d["datasources"][0]["jsonData"]["derivedFields"][0].__setitem__("datasourceUID", "x"),
         "unknown key 'datasourceUID'"),
        ("datasources/obskit.yaml", lambda d: d["datasources"][0]["jsonData"].__setitem__("manageAlert", False),
         "unknown key 'manageAlert'"),
        ("datasources/obskit.yaml", lambda d: d["datasources"][1]["correlations"][0]["config"].__setitem__("targetUid", "x"),
         "unknown key 'targetUid'"),
        ("dashboards/obskit.yaml", lambda d: d["providers"][0].__setitem__("allowUIUpdates", True), "unknown key 'allowUIUpdates'"),
        ("plugins/obskit.yaml", lambda d: d.__setitem__("app", []), "unknown key 'app'"),
        ("alerting/rules.yaml", lambda d: d["groups"][0]["rules"][0].__setitem__("keep_firing_for", "1m"), "unknown key 'keep_firing_for'"),
        ("alerting/rules.yaml", lambda d: d["groups"][0]["rules"][0].__setitem__("noDataState", "Ok"), "noDataState 'Ok'"),
        ("alerting/notifications.yaml", lambda d: d["contactPoints"][2]["receivers"][0]["settings"].__setitem__("integration_key", "x"),
         "unknown key 'integration_key'"),
        ("alerting/notifications.yaml", lambda d: d["policies"][0]["routes"][1].__setitem__("mute_timings", ["x"]), "unknown key 'mute_timings'"),
        ("alerting/notifications.yaml", lambda d: d["muteTimes"][0]["time_intervals"][0]["times"][0].__setitem__("start", "x"),
         "unknown key 'start'"),
    ],
)
def test_a_misspelt_key_is_caught(everything, rel, mutate, expected):
    path = f"configs/grafana/provisioning/{rel}"
    doc = copy.deepcopy(provisioning_files(everything)[path])
    mutate(doc)
    assert any(expected in p for p in problems_in(path, doc))


def test_alerting_folder_holds_only_files_grafana_accepts(everything):
    # Grafana aborts start when the alerting folder holds a file of another extension.
    for rel in everything:
        if rel.startswith(alerting.ALERTING_DIR + "/"):
            assert rel.endswith((".yaml", ".yml", ".json")), rel


def test_datasource_files_use_api_version_1_and_secure_json_for_secrets(everything):
    doc = provisioning_files(everything)["configs/grafana/provisioning/datasources/obskit.yaml"]
    assert doc["apiVersion"] == 1  # without it, camelCase keys such as jsonData are ignored
    assert "prune" not in doc
    for ds in doc["datasources"]:
        assert set(ds["secureJsonData"]) <= {"basicAuthPassword", "tlsCACert"}
        assert not {"password", "basicAuthPassword"} & set(ds)


def test_loki_datasources_manage_no_alert_rules(everything):
    """Grafana reads a Loki datasource's rules from <url>/prometheus/api/v1/rules, which the
    gateway routes to Mimir: with manageAlerts on, each Loki datasource would list Mimir's
    ruler state as its own."""
    doc = provisioning_files(everything)["configs/grafana/provisioning/datasources/obskit.yaml"]
    loki = [ds for ds in doc["datasources"] if ds["type"] == "loki"]
    assert len(loki) == len({ds["uid"] for ds in doc["datasources"]}) // 2 >= 3  # every tenant and ops
    for ds in loki:
        assert ds["jsonData"].get("manageAlerts") is False, ds["uid"]


def test_dashboard_json_has_no_numeric_ids_or_legacy_datasource_names():
    # Grafana 13 removed numeric-id APIs; datasources are referenced by uid (or variable).
    for path in (REPO / "configs" / "grafana" / "dashboards").glob("*.json"):
        dash = json.loads(path.read_text())
        assert "id" not in dash, path.name
        for panel in dash["panels"]:
            for ref in [panel.get("datasource"), *[t.get("datasource") for t in panel.get("targets", [])]]:
                assert ref is None or (isinstance(ref, dict) and "uid" in ref), (path.name, panel["title"])


def test_logs_link_to_metrics_and_metrics_link_back_within_one_tenant(everything):
    doc = provisioning_files(everything)["configs/grafana/provisioning/datasources/obskit.yaml"]
    by_uid = {ds["uid"]: ds for ds in doc["datasources"]}
    for uid, ds in by_uid.items():
        tenant_prefix = uid.rsplit("-", 1)[0]
        if tenant_prefix == "obskit-ops":
            # The operators' logs are the gateway's access log and no ops series is the
            # gateway's: a link there would always land on nothing (the stack proof found it).
            assert "derivedFields" not in ds["jsonData"] and "correlations" not in ds, uid
            continue
        if ds["type"] == "loki":
            (field,) = ds["jsonData"]["derivedFields"]
            assert field["datasourceUid"] == f"{tenant_prefix}-metrics"
            assert field["matcherType"] == "label" and field["matcherRegex"] == "service_name"
            # Grafana expands $VARS in jsonData: the link's own variable is escaped as $${...}.
            assert "$${__value.raw}" in field["url"]
        else:
            (corr,) = ds["correlations"]
            assert corr["targetUID"] == f"{tenant_prefix}-logs"
            assert corr["config"]["target"]["expr"] == '{service_name="$${service_name}"}'
            assert corr["config"]["transformations"][0]["mapValue"] == "service_name"
