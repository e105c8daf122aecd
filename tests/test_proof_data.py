"""The list of shipped queries that are empty at rest (obskit/proof/empty_at_rest.yaml):
every entry names a query that is really shipped, exactly as written, and a scenario the
stack proof can run; it agrees with the rules' noDataState."""

from __future__ import annotations

import copy

import pytest
import yaml

from obskit import alerting, checks, proof
from obskit.render import render
from obskit.spec.load import load_spec


@pytest.fixture(scope="module")
def files():
    return render(load_spec(None, environ={}, use_default_file=False), "local")


@pytest.fixture(scope="module")
def shipped(files):
    return proof.shipped_expressions(files)


def unshipped(entries, shipped) -> list[str]:
    """Entries whose (where, expr) pair is not among the shipped queries."""
    known = {(s["where"], s["expr"]) for s in shipped}
    return [f"{e['where']}: {e['expr']}" for e in entries if (e["where"], e["expr"]) not in known]


def test_shipped_expressions_cover_every_dashboard_and_rule_query(files, shipped):
    # The same queries obskit check hands to promtool and the LogQL parser (less the
    # datasource links, which are not panels or rules).
    checked = sorted(expr for where, _lang, expr in checks.shipped_queries(files)
                     if "/dashboards/" in where or "/alerting/" in where)
    assert sorted(s["expr"] for s in shipped) == checked
    assert {s["language"] for s in shipped} == {"promql", "logql"}
    assert all(s["datasource"] for s in shipped)


def test_every_entry_is_shipped_exactly_and_names_a_known_scenario(shipped):
    entries = proof.load_empty_at_rest()
    assert entries
    assert unshipped(entries, shipped) == []
    assert {e["scenario"] for e in entries} <= proof.SCENARIOS
    assert len({(e["where"], e["expr"]) for e in entries}) == len(entries)  # no duplicates


def test_a_misspelt_expression_or_unknown_scenario_is_caught(shipped):
    entries = copy.deepcopy(proof.load_empty_at_rest())
    misspelt = entries[0] | {"expr": entries[0]["expr"].replace("discarded", "discared")}
    assert unshipped([misspelt], shipped) == [f"{misspelt['where']}: {misspelt['expr']}"]
    moved = entries[0] | {"where": "obskit-stack-health/No such panel"}
    assert unshipped([moved], shipped)
    assert "burn_cpu" not in proof.SCENARIOS


def test_the_loader_refuses_a_malformed_entry(monkeypatch, tmp_path):
    bad = tmp_path / "empty_at_rest.yaml"
    bad.write_text(yaml.safe_dump({"entries": [{"where": "rule/X", "expr": "x", "reason": "r"}]}))

    class Files:
        def joinpath(self, name):
            return bad

    monkeypatch.setattr(proof.resources, "files", lambda _pkg: Files())
    with pytest.raises(ValueError, match="entries\\[0\\]"):
        proof.load_empty_at_rest()


def test_rules_empty_at_rest_are_exactly_those_whose_no_data_is_ok(files):
    """A rule empty on a healthy stack must treat no data as OK, or it would raise a no-data
    alert at rest; any other rule must not, or a stopped data source would look healthy."""
    listed = {e["where"][len("rule/"):] for e in proof.load_empty_at_rest() if e["where"].startswith("rule/")}
    ok = {rule["title"] for _rel, _grp, rule in alerting.provisioned_rules(files) if rule["noDataState"] == "OK"}
    assert listed == ok
    states = {rule["title"]: rule["noDataState"] for _rel, _grp, rule in alerting.provisioned_rules(files)}
    assert states["StackComponentDown"] == "Alerting"
    assert states["HostCpuHigh"] == states["StackComponentCpuHigh"] == "NoData"
