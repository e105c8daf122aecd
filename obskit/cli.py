"""The obskit command line: thin adapters over the core API.

Each command parses its arguments, makes one core call and prints the result, for
people or as JSON (``--json``). Errors print one message and a hint and exit non-zero;
``--debug`` (or OBSKIT_DEBUG=1) shows the traceback. Heavy libraries load lazily so that
``obskit --help`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from obskit import __version__

DEBUG_ENV = "OBSKIT_DEBUG"


class Ctx:
    def __init__(self, spec: str | None, debug: bool) -> None:
        self.spec = spec
        self.debug = debug

    def load(self, sets: tuple[str, ...]):
        from obskit.spec.load import load_spec

        return load_spec(self.spec, sets=sets)


def _out(data, as_json: bool, human) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        human(data)


spec_sets = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec value, e.g. --set mimir.replicas=1 (repeatable; wins over file and env).",
)
env_option = click.option(
    "--env", "env_name", default="local", show_default=True, help="Environment declared in the spec."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="obskit")
@click.option(
    "--spec",
    type=click.Path(dir_okay=False),
    envvar="OBSKIT_SPEC",
    help="Spec file (default: ./obskit.yaml if present, else the embedded default).",
)
@click.option("--debug", is_flag=True, envvar=DEBUG_ENV, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, spec: str | None, debug: bool) -> None:
    """obskit: prove an observability stack locally, then ship exactly that to AWS.

    One typed spec (obskit.yaml) renders the configs of Grafana, Loki, Mimir, the
    OpenTelemetry Collector and an nginx gateway; the same bytes run in docker compose
    and on ECS.
    """
    ctx.obj = Ctx(spec, debug)


# --------------------------------------------------------------------------- init


@cli.command()
@click.option("--path", default="obskit.yaml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, force: bool) -> None:
    """Write a commented starter obskit.yaml."""
    from obskit.starter import ignore_state, write_starter

    written = write_starter(Path(path), force=force)
    click.echo(f"Wrote {written}. Next: `obskit render` (or `obskit config show` to see every value).")
    if ignore_state(written.resolve().parent):
        click.echo("Added .obskit/ to .gitignore: it holds generated secrets and rendered output.")


# --------------------------------------------------------------------------- render


@cli.command()
@env_option
@spec_sets
@click.option("--out", "out", type=click.Path(file_okay=False), help="Output folder (default: .obskit/env/ENV).")
@json_option
@click.pass_obj
def render(obj: Ctx, env_name: str, sets: tuple[str, ...], out: str | None, as_json: bool) -> None:
    """Render an environment's configs, compose project and bindings."""
    from obskit.render import default_output, render as do_render, write_environment

    resolved = obj.load(sets)
    files = do_render(resolved, env_name)
    result = write_environment(files, Path(out) if out else default_output(env_name))

    def human(_):
        env = resolved.spec.environments[env_name]
        click.echo(
            f"Rendered environment '{env_name}' ({env.kind}) from {resolved.source_label} "
            f"into {_rel(result.path)}: {len(result.files)} files, {len(result.changed)} changed."
        )
        for rel in result.files:
            mark = "*" if rel in result.changed else " "
            click.echo(f"  {mark} {rel}")

    _out(
        {"environment": env_name, "path": str(result.path), "files": result.files, "changed": result.changed},
        as_json,
        human,
    )


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- config


@cli.group()
def config() -> None:
    """Inspect the effective spec."""


@config.command("show")
@spec_sets
@json_option
@click.pass_obj
def config_show(obj: Ctx, sets: tuple[str, ...], as_json: bool) -> None:
    """Print the effective spec and where every value came from. Secrets are redacted."""
    from obskit.spec.show import effective_rows

    resolved = obj.load(sets)
    rows = effective_rows(resolved)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "source": resolved.source_label,
                    "values": [{"key": k, "value": v, "origin": o} for k, v, o in rows],
                },
                indent=2,
                sort_keys=True,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"obskit spec ({resolved.source_label})", show_lines=False)
    table.add_column("key", style="cyan", no_wrap=True)
    table.add_column("value")
    table.add_column("from", style="dim")
    for key, value, origin in rows:
        table.add_row(key, json.dumps(value) if not isinstance(value, str) else value, origin)
    Console(width=max(120, Console().width)).print(table)


# --------------------------------------------------------------------------- check


@cli.command()
@env_option
@spec_sets
@json_option
@click.pass_obj
def check(obj: Ctx, env_name: str, sets: tuple[str, ...], as_json: bool) -> None:
    """Validate a rendered environment with each component's own tool (where installed)."""
    from obskit.checks import check_environment

    resolved = obj.load(sets)
    results = check_environment(resolved, env_name)

    def human(_):
        for r in results:
            status = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[r.status]
            click.echo(f"{status} {r.name}: {r.detail}")

    _out([r.__dict__ for r in results], as_json, human)
    if any(r.status == "fail" for r in results):
        sys.exit(1)


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0") or "--debug" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="obskit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that maps errors to exit codes
        from obskit.errors import ObskitError

        if debug:
            raise
        if isinstance(exc, ObskitError):
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        click.echo(
            f"error: unexpected {type(exc).__name__}: {exc}\n  hint: rerun with --debug for the traceback, and please report it",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
