"""The catalogue of bad inputs (tests/data/bad_inputs.yaml): each gets exactly the answer
written there (an exit code, the file:line and key path, the words), never a traceback or
an "unexpected" error, and a project that already held a good render keeps it byte for
byte whenever the answer is an error.

The CLI runs in-process (``obskit.cli.main``, as the console script calls it) so the 60-odd
cases take seconds; tests/test_cli.py runs the real subprocess for the paths that need one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from conftest import AWS_ENV

CASES = yaml.safe_load((Path(__file__).parent / "data" / "bad_inputs.yaml").read_text(encoding="utf-8"))

RULE = {
    "name": "HostCpuHigh", "tenant": "ops", "expr": "up", "severity": "warning", "team": "platform",
    "summary": "s", "description": "d", "runbook_url": "https://runbooks.example.com/x",
}

AWS = AWS_ENV  # the project and an AWS environment, as the other tests declare them


def _spec_text(case: dict) -> str | None:
    gen = case.get("spec_gen")
    if gen is None:
        return case.get("spec")
    if gen == "none":
        return None
    if gen == "deep_flow":
        return "x: " + "[" * 3000 + "\n"
    if gen == "deep_mappings":
        return "x: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n"
    if gen == "alias_bomb":  # 9 levels of 9 aliases: 387 million values once expanded
        lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        for prev, name in zip("abcdefgh", "bcdefghi"):
            lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
        return "\n".join(lines) + "\n"
    if gen == "rule":  # the case's one line replaces (or adds) a field of a valid rule
        key, _, value = case["spec"].partition(": ")
        rule = {k: json.dumps(v) for k, v in RULE.items()} | {key: value}
        return "alerting:\n  rules:\n    - " + "\n      ".join(f"{k}: {v}" for k, v in rule.items()) + "\n"
    if gen == "aws":
        return AWS + case["spec"]
    raise AssertionError(f"unknown spec_gen {gen}")


def run_cli(args, capsys) -> tuple[int, str, str]:
    from obskit.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(*roots: Path) -> dict:
    snap = {}
    for root in roots:
        if root.is_file():
            snap[str(root)] = root.read_bytes()
        for p in sorted(root.rglob("*")) if root.is_dir() else []:
            if p.is_symlink():
                snap[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                snap[str(p)] = p.read_bytes()
            elif p.is_dir():
                snap[str(p)] = "dir"
    return snap


@pytest.fixture
def project(tmp_path, monkeypatch, clean_env, capsys):
    """An empty project folder (the cwd) that already holds a good render."""
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = run_cli(["render"], capsys)
    assert code == 0, err
    return work


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input(case, project, monkeypatch, capsys):
    name = case["name"]
    fmt = {"cwd": str(project), "name": project.name}
    if case.get("setup") == "init":
        assert run_cli(["init"], capsys)[0] == 0
    text = _spec_text(case)
    spec = project / "obskit.yaml"
    if text is not None:
        spec.write_bytes(text.encode("utf-8", "surrogatepass"))
    setup = case.get("setup")
    if setup == "spec_folder":
        spec.mkdir()
    elif setup == "spec_loop":
        spec.symlink_to("obskit.yaml")
    elif setup == "spec_dangling":
        spec.symlink_to("missing.yaml")
    extra_roots = []
    for rel, content in (case.get("files") or {}).items():
        path = project / rel.format(**fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if not path.resolve().is_relative_to(project):
            extra_roots.append(path.parent)
    for key, value in (case.get("env") or {}).items():
        monkeypatch.setenv(key, value)
    args = [a.format(**fmt) for a in case.get("args", ["render"])]
    before = _snapshot(project, *extra_roots)

    code, out, err = run_cli(args, capsys)

    assert "Traceback" not in err and "unexpected" not in err, (name, err)
    assert code == case["exit"], (name, code, err)
    if code == 0:
        return
    assert err.startswith("error: ") or err.startswith("Usage: "), (name, err)
    message = err.split("\n  hint:")[0]
    if "at" in case:
        assert err.startswith("error: " + case["at"]), (name, err)
    if "says" in case:
        assert case["says"] in err, (name, err)
    assert len(message.splitlines()) <= 4, (name, err)  # one clear message, not a dump
    if case.get("json_error"):
        data = json.loads(out)
        assert data["ok"] is False and data["exit_code"] == case["exit"] and case["says"] in data["error"]
    assert _snapshot(project, *extra_roots) == before, f"{name}: an error changed files"

    if (text is not None or setup or case.get("env")) and "args" not in case:
        code, _, err = run_cli(["config", "show", "--json"], capsys)
        assert code == case["exit"] and "unexpected" not in err, (name, "config show", err)


def test_the_catalogue_covers_the_issue():
    """Every kind of bad input the issue lists has a case (names are the contract)."""
    names = {c["name"] for c in CASES}
    for needed in ("out-a-folder-of-documents", "out-a-sibling-project", "out-the-project-itself", "out-dot",
                   "out-dotdot", "out-below-a-file", "complex-yaml-key", "deep-flow-nesting", "deep-mapping-nesting",
                   "alias-bomb", "surrogate-escape", "load-duration-banana", "duplicate-top-level-key",
                   "duplicate-key-inside-a-tenant", "replicas-true", "image-tag-trailing-newline",
                   "webhook-url-trailing-newline", "rule-name-trailing-newline", "bucket-name-trailing-newline",
                   "env-reference-trailing-newline", "loki-label-injection", "loki-label-empty", "hostname-with-a-space",
                   "mute-timing-on-mars", "threshold-nan", "threshold-inf", "interval-zero", "twenty-digit-duration",
                   "log-retention-negative", "vpc-cidr-nonsense", "s3-endpoint-with-a-space", "env-reference-with-dots",
                   "spec-is-a-folder", "spec-is-a-symlink-loop", "spec-is-a-dangling-link", "readme-replicas-env",
                   "readme-replicas-set", "tenant-burst-by-env", "contact-point-path-without-union-tag",
                   "tenant-named-ops", "control-character", "unknown-section-in-env", "unicode-key-in-set",
                   "empty-string", "verify-only-bogus", "uncomment-the-aws-environment",
                   "check-names-every-missing-secret"):
        assert needed in names, needed


def test_alias_bomb_is_refused_quickly(tmp_path):
    """Refused by counting values while walking, never by expanding them (the bomb expands
    to 387 million): the walk stops at MAX_NODES."""
    from obskit.errors import SpecError
    from obskit.spec import load as load_mod

    spec = tmp_path / "obskit.yaml"
    spec.write_text(_spec_text({"spec_gen": "alias_bomb"}))
    visited = []
    real = load_mod._surrogate

    def counting(value):
        visited.append(1)
        return real(value)

    load_mod._surrogate = counting
    try:
        with pytest.raises(SpecError):
            load_mod.load_spec(spec, environ={})
    finally:
        load_mod._surrogate = real
    assert len(visited) <= load_mod.MAX_NODES


def test_json_error_object_for_failing_commands(project, capsys, monkeypatch):
    """--json on a failing command prints one JSON object on stdout; the text stays on stderr."""
    (project / "obskit.yaml").write_text("mimir:\n  replicas: true\n")
    for args in (["status", "--json"], ["up", "--json"], ["load", "steady", "--json"],
                 ["promote", "--env", "local", "--json"], ["render", "--json"]):
        code, out, err = run_cli(args, capsys)
        assert code == 2, (args, err)
        data = json.loads(out)
        assert data == {"ok": False, "error": data["error"], "hint": data["hint"], "exit_code": 2,
                        "errors": data["errors"]}, args
        assert data["errors"][0]["key"] == "mimir.replicas" and data["errors"][0]["source"].endswith("obskit.yaml:2")
        assert err.startswith("error: ") and "mimir.replicas" in err


def test_alerts_list_never_folds_a_rule_name(project, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    code, out, err = run_cli(["alerts", "list"], capsys)
    assert code == 0, err
    names = ["HostCpuHigh", "StackComponentDown", "StackComponentCpuHigh", "MimirSamplesRejected",
             "LokiLinesRejected", "CollectorDataDropped", "ObjectStoreErrors", "GatewayErrorRatioHigh"]
    for rule in names:
        assert rule in out, (rule, out)


def test_verify_fails_fast_when_the_gateway_refuses_connections():
    """Nothing listens: one sentence (GatewayUnreachable) before any check runs, instead of
    each check waiting out its deadline on "connection refused"."""
    from obskit.loopback import free_port
    from obskit.spec.load import load_spec
    from obskit.verify import Endpoints, GatewayUnreachable, cases_for, run_verify

    port = free_port()
    ep = Endpoints(f"https://localhost:{port}", f"https://localhost:{port}/grafana", None,
                   {"apps-write": "x", "apps-read": "x"}, ("admin", "x"), ["apps", "sandbox"], [], [])
    ran = []
    with pytest.raises(GatewayUnreachable) as info:
        run_verify(ep, cases_for(load_spec(None, environ={}, use_default_file=False).spec), deadline_seconds=1,
                   on_result=ran.append)
    assert ran == []
    assert str(info.value).startswith(f"nothing answers at https://localhost:{port} (connection refused)")
    assert "\n" not in info.value.message
