"""Every example in README.md, load/README.md and `obskit --help` runs as written.

- YAML spec examples are written to an obskit.yaml of their own and rendered; scenario
  examples load as scenarios.
- `obskit ...` commands that need no running stack, engine or cloud (render, check,
  config, init, parity, alerts, --help) run, in a folder of their own; every other one is
  parsed by the real command line (options, arguments, choices), since it would need a
  stack to run. Commands with placeholders (NAME, DIR, <env>, ...) are skipped: they
  cannot run as written.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from obskit.cli import cli

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", REPO / "load" / "README.md"]
RUNS = {"render", "check", "config", "init", "parity", "alerts", "--help", "-h", "--version"}
# The environment variables the examples' env: secrets name, as a user would export them.
EXAMPLE_ENV = {"PAGERDUTY_KEY": "x", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/x",
               "SMTP_PASSWORD": "x"}


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(), re.S | re.M)


def _doc_commands() -> list[tuple[str, str]]:
    """(where, command) for every `obskit ...` in the docs: code blocks and code spans."""
    found: list[tuple[str, str]] = []
    for path in DOCS:
        text = path.read_text()
        lines, fence = [], None
        for line in text.splitlines():
            if line.startswith("```"):
                fence = None if fence is not None else line[3:].strip() or "plain"
            elif fence in ("sh", "plain"):
                lines.append(line)
        lines += re.findall(r"`(obskit [^`]+)`", text)
        for line in lines:
            for part in line.split("&&"):
                part = part.split("#", 1)[0].strip()
                if part.startswith("obskit "):
                    found.append((str(path.relative_to(REPO)), part))
    return found


def _help_commands() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(cmd: click.Command, path: str) -> None:
        texts = [cmd.help or ""] + [getattr(p, "help", "") or "" for p in cmd.params]
        for text in texts:
            found.extend([(f"obskit {path} --help".replace("  ", " "), c) for c in re.findall(r"`(obskit [^`]+)`", text)])
            found.extend((f"obskit {path} --help", f"obskit render {m}")
                         for m in re.findall(r"e\.g\. (--set \S+?)[ )]", text))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(cli, "")
    return found


PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]+\b|<|\.\.\.|\[|\|")


def _examples() -> list[tuple[str, str]]:
    out = []
    for where, command in dict.fromkeys(_doc_commands() + _help_commands()):
        if PLACEHOLDER.search(command.replace("OBSKIT__", "")):
            continue
        out.append((where, command))
    return out


def _parse_only(args: list[str]) -> None:
    """What click does before it runs a command: every option, argument and choice checked.
    A bare `obskit NAME` in prose names a command: it must exist."""
    if len(args) == 1:
        assert args[0] in cli.commands, f"no command {args[0]}"
        return
    ctx = cli.make_context("obskit", list(args))
    cmd: click.Command = cli
    rest = list(ctx.args) if not getattr(ctx, "_protected_args", None) else [*ctx._protected_args, *ctx.args]
    while isinstance(cmd, click.Group) and rest:
        name, cmd, rest = cmd.resolve_command(ctx, rest)
        ctx = cmd.make_context(name, rest, parent=ctx)
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args] if isinstance(cmd, click.Group) else []


EXAMPLES = _examples()


def test_the_docs_have_examples_to_run():
    assert len(EXAMPLES) >= 15 and any(c.startswith("obskit render") for _, c in EXAMPLES)


@pytest.mark.parametrize("where, command", EXAMPLES, ids=[f"{w}: {c}" for w, c in EXAMPLES])
def test_every_documented_command_runs_or_parses_as_written(where, command, run_obskit, tmp_path):
    args = shlex.split(command)[1:]
    sub = next((a for a in args if not a.startswith("--spec")), "--help")
    named = cli.commands.get(args[0]) if len(args) == 1 else None
    if named is not None and any(p.required for p in named.params):
        return  # `obskit parity` in prose names the command (it exists); it is no example to run
    if sub in RUNS or "--help" in args or "-h" in args:
        proc = run_obskit(*args, env=EXAMPLE_ENV)
        assert proc.returncode == 0, f"{where}: `{command}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    else:
        _parse_only(args)


@pytest.mark.parametrize("index", range(len(_blocks(REPO / "README.md", "yaml"))))
def test_every_spec_example_in_the_readme_renders_as_written(index, run_obskit, tmp_path):
    text = _blocks(REPO / "README.md", "yaml")[index]
    (tmp_path / "obskit.yaml").write_text(text)
    proc = run_obskit("render", env=EXAMPLE_ENV)
    assert proc.returncode == 0, f"README yaml example {index}:\n{text}\n{proc.stderr}"


def test_the_load_readme_examples_load_as_written(run_obskit, tmp_path):
    from obskit.loadgen.scenario import Scenario, load_scenario

    blocks = _blocks(REPO / "load" / "README.md", "yaml")
    assert blocks
    for i, text in enumerate(blocks):
        data = yaml.safe_load(text)
        path = tmp_path / f"example-{i}.yaml"
        path.write_text(text)
        if "tenants" in data and "name" in data and any("logs" in t or "points" in t for t in data["tenants"]):
            assert isinstance(load_scenario(str(path)), Scenario)  # a scenario
        else:
            (tmp_path / "obskit.yaml").write_text(text)  # a spec
            proc = run_obskit("render")
            assert proc.returncode == 0, f"load/README yaml example {i}:\n{text}\n{proc.stderr}"


def test_a_scenario_error_names_the_key_and_a_hint_the_wheel_can_follow(tmp_path):
    from obskit.errors import UsageError
    from obskit.loadgen.scenario import load_scenario, scenario_dir

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "isolation": {"tenant": None, "window": ["1s", "2s"]},
                                    "tenants": [{"tenant": "apps", "logs": [{"at": 0, "rate": 1}]}]}))
    with pytest.raises(UsageError) as caught:
        load_scenario(str(path))
    assert ": : " not in str(caught.value) and "'None'" not in str(caught.value)
    assert "the default tenant (null)" in caught.value.message
    assert str(scenario_dir()) in caught.value.hint and scenario_dir().is_dir()
