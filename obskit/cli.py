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
_JSON_WANTED = False


def _want_json(ctx, param, value):
    """Remember --json, so a failure is printed as a JSON object on stdout too."""
    global _JSON_WANTED
    _JSON_WANTED = _JSON_WANTED or bool(value)
    return value


json_option = click.option("--json", "as_json", is_flag=True, callback=_want_json,
                           help="Print machine-readable JSON (a failure too, as {\"ok\": false, \"error\": ...}).")
run_env_option = click.option(
    "--env", "env_name", default=None, help="Environment declared in the spec (default: local, or with --runtime the first of that kind)."
)
runtime_option = click.option(
    "--runtime", type=click.Choice(["compose", "process"]), default=None,
    help="compose (Docker) or process (plain processes on 127.0.0.1, no Docker): picks the first environment of that kind.",
)


def _runtime(obj: "Ctx", sets, env_name: str | None, runtime: str | None):
    from obskit import runtime as runtimes

    project = _project(obj, sets)
    return project, runtimes.for_env(project, runtimes.pick_environment(project, env_name, runtime))


class _PipeClosed(Exception):
    """stdout's reader went away; not an OSError, so click does not turn it into exit 1."""


class _Cli(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (BrokenPipeError, _PipeClosed):
            raise _PipeClosed() from None


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
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
    # `obskit render` reads ./obskit.yaml by itself; any other file must be named.
    default = Path("obskit.yaml").resolve()
    spec = "" if written.resolve() == default else f"--spec {_quote(str(written))} "
    click.echo(f"Wrote {written}. Next: `obskit {spec}render` (or `obskit {spec}config show` to see every value).")
    click.echo("It declares the environments local (docker compose) and process (no Docker); an AWS "
               "environment, prod, is there commented out: uncomment it and fill in your values to promote.")
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
    from obskit.project import Project
    from obskit.render import render as do_render, write_environment

    resolved = obj.load(sets)
    files = do_render(resolved, env_name)
    result = write_environment(files, Path(out) if out else Project.of(resolved).env_dir(env_name))

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


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


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
    _require_env_secrets(resolved, env_name)
    results = check_environment(resolved, env_name)

    def human(_):
        for r in results:
            status = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[r.status]
            click.echo(f"{status} {r.name}: {r.detail}")

    failed = [r.name for r in results if r.status == "fail"]
    _out({"ok": not failed, "environment": env_name, "failed": failed, "results": [r.__dict__ for r in results]},
         as_json, human)
    if failed:
        sys.exit(1)


def _require_env_secrets(resolved, env_name: str) -> None:
    """Every env: secret the environment reads must be set: name them all in one message."""
    from obskit import bindings
    from obskit.errors import UsageError

    resolved.environment(env_name)
    missing: dict[str, list[str]] = {}
    for service in bindings.services(resolved.spec, env_name).values():
        for binding in service.env.values():
            ref = getattr(binding, "ref", None) if isinstance(binding, bindings.Secret) else None
            if ref and ref.startswith("env:") and ref[4:] not in os.environ:
                missing.setdefault(ref[4:], [])
                if binding.name not in missing[ref[4:]]:
                    missing[ref[4:]].append(binding.name)
    if missing:
        names = sorted(missing)
        listed = "; ".join(f"${v} (secret {', '.join(missing[v])})" for v in names)
        raise UsageError(
            f"{len(names)} environment variable(s) that the spec's env: secrets read are not set: {listed}",
            hint="export " + " ".join(f"{v}=..." for v in names) + f" and run `obskit check --env {env_name}` again",
        )


# --------------------------------------------------------------------------- the local stack


def _project(obj: Ctx, sets: tuple[str, ...]):
    from obskit.project import Project

    return Project.of(obj.load(sets))


def _health_line(states) -> str:
    if not states:
        return ""
    ready = sum(1 for s in states if s.ready or (s.service == "create-buckets" and s.state == "exited"))
    waiting = [f"{s.service} ({s.health or s.state})" for s in states
               if not (s.ready or (s.service == "create-buckets" and s.state == "exited"))]
    return f"{ready}/{len(states)} ready" + (f"; waiting for {', '.join(waiting)}" if waiting else "")


@cli.command()
@run_env_option
@runtime_option
@spec_sets
@click.option("--wait-timeout", default=600, show_default=True, help="Seconds to wait for every healthcheck.")
@click.option("--no-verify", is_flag=True, help="Skip the acceptance checks after start.")
@click.option("--images", is_flag=True,
              help="Bake the configs into the component images (the ones `obskit promote` pushes) instead of "
                   "mounting them: the same as --set environments.ENV.config_delivery=image.")
@json_option
@click.pass_obj
def up(obj: Ctx, env_name: str | None, runtime: str | None, sets, wait_timeout: int, no_verify: bool, images: bool,
       as_json: bool) -> None:
    """Start the local stack, health-gated, then prove it with `verify`."""
    from rich.console import Console

    from obskit.verify import cases_for_endpoints, run_verify

    if images:
        from obskit.errors import UsageError

        project, rt = _runtime(obj, sets, env_name, runtime)
        if rt.kind != "compose":
            raise UsageError(f"--images bakes configs into container images; the '{rt.env_name}' environment runs "
                             f"{rt.kind}es, which read the rendered configs directly",
                             hint=f"drop --images, or use a compose environment: `obskit up --env local --images`")
        sets = (*sets, f"environments.{rt.env_name}.config_delivery=image")
    project, rt = _runtime(obj, sets, env_name, runtime)
    env_name = rt.env_name
    console = Console(stderr=True, quiet=as_json)
    with console.status("starting") as status:
        def progress(phase, states):
            status.update(f"{phase} {_health_line(states)}")

        result = rt.up(wait_timeout=wait_timeout, on_progress=progress)
    if result.render.rendered:
        console.print(f"rendered {len(result.render.changed)} changed file(s) into {_rel(result.render.path)}")
    if result.secrets_created:
        console.print(f"generated {len(result.secrets_created)} secret(s) in .obskit/secrets/ (0600)")
    for component, tag in result.images.items():
        console.print(f"{component} runs image {tag}")
    changes = getattr(getattr(rt, "processes", None), "last_up", None) or result.changes
    if changes:
        console.print(_up_changes(changes))
    outcomes = []
    if not no_verify:
        ep = rt.endpoints()
        outcomes = run_verify(
            ep, cases_for_endpoints(project.spec, ep), deadline_seconds=project.spec.verify.deadline_seconds,
            on_result=lambda o: console.print(f"{'[green]PASS[/]' if o.ok else '[red]FAIL[/]'} {o.seconds:6.2f}s {o.name}: {o.detail}"),
            env_name=env_name,
        )
    from obskit.annotate import Event

    failed = sum(1 for o in outcomes if not o.ok)
    verdict = ("verify skipped" if no_verify else f"verify failed ({failed} of {len(outcomes)} checks)" if failed
               else f"verify passed ({len(outcomes)} checks)")
    annotation = _annotate(Event("up", env_name, f"obskit up ({rt.kind}): {verdict}",
                                 spec_sha256=project.resolved.digest()), endpoints=rt.endpoints, quiet=as_json)
    if as_json:
        click.echo(json.dumps({"environment": env_name, "runtime": rt.kind, "urls": result.urls,
                               "ca_file": str(result.ca_file), "images": result.images, "changes": changes or {},
                               "services": [s.__dict__ for s in result.services],
                               "verify": [o.to_json() for o in outcomes], "annotation": annotation},
                              indent=2, sort_keys=True, default=list))
    else:
        click.echo(f"\nThe '{env_name}' stack is up ({rt.kind}).")
        for name, url in result.urls.items():
            click.echo(f"  {name:28} {url}")
        click.echo(f"  {'gateway CA certificate':28} {_rel(result.ca_file)}")
        click.echo(f"\nCredentials: `obskit secrets show --env {env_name}` lists them; "
                   f"`obskit secrets show grafana-admin-password --env {env_name}` prints one "
                   f"(Grafana user: {project.spec.grafana.admin_user}).")
        click.echo(f"Point an app at it: `obskit env-vars --env {env_name}` prints the OTEL_EXPORTER_OTLP_* variables.")
    if any(not o.ok for o in outcomes):
        sys.exit(1)


def _annotate(event, *, endpoints=None, project=None, quiet: bool = False) -> dict:
    """Leave the command's annotation in the stack's Grafana (``endpoints``: a callable giving
    the runtime's endpoints; else found from ``project``) and say so on stderr. Never fails
    the command: an unreachable Grafana, or one obskit cannot find, is reported, not raised."""
    from obskit import annotate
    from obskit.errors import ObskitError

    if endpoints is not None:
        try:
            outcome = annotate.write(endpoints(), event)
        except ObskitError as exc:
            outcome = annotate.Outcome(False, exc.message)
    else:
        outcome = annotate.record(project, event.environment, event)
    if not quiet:
        click.echo(outcome.line(), err=True)
    return outcome.to_json()


def _up_changes(changes: dict[str, list[str]]) -> str:
    """One line: what a (second) up restarted, started and left running."""
    parts = []
    if changes.get("restarted"):
        parts.append(f"restarted {', '.join(changes['restarted'])} (changed)")
    if changes.get("started"):
        parts.append(f"started {', '.join(changes['started'])}")
    if changes.get("stopped"):
        parts.append(f"stopped {', '.join(changes['stopped'])} (no longer part of the stack)")
    if changes.get("kept"):
        parts.append(f"{len(changes['kept'])} unchanged service(s) kept running"
                     if parts else f"nothing changed: all {len(changes['kept'])} services kept running")
    return "; ".join(parts)


@cli.command()
@run_env_option
@runtime_option
@spec_sets
@click.option("--volumes", is_flag=True, help="Also delete the data volumes (logs, metrics, dashboards state).")
@click.pass_obj
def down(obj: Ctx, env_name: str | None, runtime: str | None, sets, volumes: bool) -> None:
    """Stop the local stack. Data survives unless --volumes is given."""
    _, rt = _runtime(obj, sets, env_name, runtime)
    if not rt.down(volumes=volumes):
        click.echo(f"The '{rt.env_name}' stack was never brought up here; nothing to stop.")
        return
    click.echo(f"The '{rt.env_name}' stack is down" + (" and its data deleted." if volumes else "; its data is kept."))


@cli.command()
@run_env_option
@runtime_option
@spec_sets
@json_option
@click.pass_obj
def status(obj: Ctx, env_name: str | None, runtime: str | None, sets, as_json: bool) -> None:
    """Each service's state, health and published ports."""
    project, rt = _runtime(obj, sets, env_name, runtime)
    states = rt.status()
    if rt.kind == "process":
        note = rt.processes.moved_note()
    else:
        from obskit.stack import following

        note = following(project, rt.env_name, states)[1]
    if note and not as_json:
        click.echo(f"note: {note}", err=True)
    if as_json:
        click.echo(json.dumps([s.__dict__ for s in states], indent=2, sort_keys=True, default=list))
        return
    if not states:
        click.echo(f"The '{rt.env_name}' stack is not running.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"obskit stack '{rt.env_name}' ({rt.kind})")
    for col in ("service", "state", "health", "ports"):
        table.add_column(col)
    for s in states:
        table.add_row(s.service, _state_text(s), s.health or "-", ", ".join(s.ports) or "-")
    Console().print(table)


def _state_text(s) -> str:
    """running; exited (CODE); killed (SIGNAME): a program killed by a signal is not shown as exited."""
    if s.state == "killed":
        import signal

        try:
            return f"killed ({signal.Signals(s.exit_code).name})"
        except ValueError:
            return f"killed (signal {s.exit_code})"
    if s.state == "exited":
        return f"exited ({'status unknown' if s.exit_code is None else s.exit_code})"
    return s.state


@cli.command()
@click.argument("service", required=False)
@run_env_option
@runtime_option
@spec_sets
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new lines.")
@click.option("--tail", type=int, default=200, show_default=True, help="Lines from the end of each log.")
@click.pass_obj
def logs(obj: Ctx, service: str | None, env_name: str | None, runtime: str | None, sets, follow: bool, tail: int) -> None:
    """Show the logs of the stack, or of one SERVICE."""
    _, rt = _runtime(obj, sets, env_name, runtime)
    # Ctrl-C ends a follow: main() turns it into exit 130, as for every command.
    for chunk in rt.logs([service] if service else None, tail=tail, follow=follow):
        sys.stdout.write(chunk)
        sys.stdout.flush()


@cli.group()
def secrets() -> None:
    """Generated secrets (the only way to print one)."""


@secrets.command("show")
@click.argument("name", required=False)
@env_option
@spec_sets
@click.pass_obj
def secrets_show(obj: Ctx, name: str | None, env_name: str, sets) -> None:
    """Without NAME: list the secrets and who uses them. With NAME: print that secret."""
    from obskit.errors import UsageError
    from obskit.secrets import SecretStore, gateway_users

    from obskit.spec.model import AwsEnvironment

    project = _project(obj, sets)
    if isinstance(project.resolved.environment(env_name), AwsEnvironment):
        from obskit.promote.secrets import show  # an AWS environment's secrets live in SSM

        values = show(project.resolved, env_name)
    else:
        values = SecretStore(project.state_dir, env_name).load()
    if not values:
        raise UsageError(f"no secrets for environment '{env_name}' yet", hint=f"run `obskit up --env {env_name}`")
    if name is None:
        users = {s.name: user for user, s in gateway_users(project.spec).items()}
        click.echo(f"Secrets of '{env_name}' (values hidden; `obskit secrets show NAME --env {env_name}` prints one):")
        for key in sorted(values):
            extra = f"  (gateway user {users[key]})" if key in users else ""
            click.echo(f"  {key}{extra}")
        return
    if name not in values:
        import difflib

        close = difflib.get_close_matches(name, list(values), n=1)
        raise UsageError(f"no secret named '{name}'", hint=f"did you mean '{close[0]}'?" if close else
                         f"`obskit secrets show --env {env_name}` lists them")
    click.echo(values[name])


@cli.command("env-vars")
@run_env_option
@runtime_option
@click.option("--tenant", help="The tenant the app writes as (default: the first declared).")
@spec_sets
@click.pass_obj
def env_vars(obj: Ctx, env_name: str | None, runtime: str | None, tenant: str | None, sets) -> None:
    """Print the OTEL_EXPORTER_OTLP_* variables that point an app's OpenTelemetry SDK at a
    stack: `eval "$(obskit env-vars --env NAME)"`. Logs go to Loki, metrics to Mimir, as
    TENANT's writer, TLS verified against the stack's CA. The credential is not printed:
    the output reads it with `obskit secrets show` when it is evaluated."""
    from obskit import runtime as runtimes
    from obskit import stack
    from obskit.errors import UsageError

    project = _project(obj, sets)
    from obskit.runtime.process import running_endpoints

    name = runtimes.pick_environment(project, env_name, runtime)
    notes: list[str] = []  # a compose stack on other ports than the spec's
    ep, note = running_endpoints(project, name, stack.endpoints(project, name, notes=notes))
    note = note or next(iter(notes), None)
    if note:
        click.echo(f"note: {note}", err=True)
    tenant = tenant or ep.tenants[0]
    if tenant not in ep.tenants:
        raise UsageError(f"no tenant '{tenant}' in the spec", hint="tenants: " + ", ".join(ep.tenants))
    spec = f" --spec {_quote(str(obj.spec))}" if obj.spec else ""
    secret = f"tenant-{tenant}-write-authorization"
    lines = [
        f"# The '{name}' stack, as tenant {tenant}'s writer: eval \"$(obskit env-vars --env {name})\"",
        "export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
        f"export OTEL_EXPORTER_OTLP_LOGS_ENDPOINT={ep.gateway}/otlp/v1/logs",
    ]
    if ep.has_mimir:
        lines.append(f"export OTEL_EXPORTER_OTLP_METRICS_ENDPOINT={ep.gateway}/otlp/v1/metrics")
    else:
        lines.append("export OTEL_METRICS_EXPORTER=none  # this stack runs without Mimir")
    if ep.ca_file:
        lines.append(f"export OTEL_EXPORTER_OTLP_CERTIFICATE={_quote(str(Path(ep.ca_file).resolve()))}")
        bundles = [v for v in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if os.environ.get(v)]
        if bundles:
            # Python's requests (under the OpenTelemetry SDK) prefers these to the CA above.
            lines.append(f"# {' and '.join(bundles)} {'is' if len(bundles) == 1 else 'are'} set: a Python app "
                         f"then ignores OTEL_EXPORTER_OTLP_CERTIFICATE; run it with `env -u {' -u '.join(bundles)}`")
    lines += [
        # The header's value is percent-encoded (W3C baggage format): its space is %20.
        f"export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=$(obskit{spec} secrets show {secret} --env {name} "
        f"| sed 's/ /%20/g')\"",
        "export OTEL_TRACES_EXPORTER=none  # the stack stores logs and metrics, not traces",
    ]
    click.echo("\n".join(lines))


@cli.command("load")
@click.argument("scenario")
@env_option
@spec_sets
@click.option("--duration", callback=lambda ctx, p, v: _duration(v), help="Override the scenario's duration, e.g. 30s.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Sending processes (default: the scenario's, else as many as its rates need, at most the CPU count).")
@click.option("--out", type=click.Path(file_okay=False), help="Report folder (default: .obskit/load/<run>).")
@click.option("--no-count", is_flag=True, help="Skip counting what arrived in Loki and Mimir afterwards.")
@click.option("--no-freshness", is_flag=True, help="Skip the freshness probes during the run.")
@json_option
@click.pass_obj
def load_cmd(obj: Ctx, scenario: str, env_name: str, sets, duration, workers, out, no_count, no_freshness,
             as_json: bool) -> None:
    """Run a load SCENARIO (steady, ramp, spike, high-cardinality, noisy-neighbour, or a
    file) against an environment's gateway; write a JSON report and PNG plots."""
    from obskit.loadgen.api import load
    from obskit.loadgen.report import summary

    progress = None if as_json else _LoadProgress()
    try:
        result = load(obj.load(sets), env_name, scenario, duration=duration, workers=workers,
                      out=Path(out) if out else None, count=not no_count, freshness=not no_freshness,
                      on_tick=progress.tick if progress else None)
    finally:
        if progress:
            progress.close()
    from obskit.loadgen.api import unbalanced_error

    failure = unbalanced_error(result)
    annotation = _annotate(_load_event(result.report, env_name, failure), project=_project(obj, sets), quiet=as_json)
    if as_json:
        click.echo(json.dumps(result.to_json() | {"annotation": annotation}, indent=2, sort_keys=True))
        if failure is not None:
            sys.exit(failure.exit_code)
        return
    click.echo(summary(result.report))
    click.echo("report: " + ", ".join(_rel(p) for p in result.files))
    if failure is not None:
        raise failure


def _load_event(report: dict, env_name: str, failure):
    from obskit.annotate import Event

    iso = report.get("isolation") or {}
    verdict = ("counts do not balance" if failure is not None
               else iso.get("verdict") if iso.get("measured", True) and iso.get("verdict") else "counts balance")
    offered = sum(t.get("offered", 0) for t in report.get("totals", {}).values())
    return Event("load", env_name, f"obskit load {report['scenario']}: {verdict}",
                 {"scenario": report["scenario"], "verdict": verdict, "duration": f"{report['duration_s']} s",
                  "offered": f"{offered:,} items", "run": str(report.get("run_id", ""))})


def _duration(value: str | None) -> str | None:
    if value is None:
        return None
    from obskit.loadgen.scenario import seconds

    try:
        ok = seconds(value) > 0
    except ValueError:
        ok = False
    if not ok:
        raise click.BadParameter(f"{value!r} is not a duration: write a number and a unit, e.g. 30s, 2m, 500ms, 1h")
    return value


class _LoadProgress:
    """One live line: elapsed time, accepted rate and rejects per stream."""

    def __init__(self) -> None:
        import time

        from rich.console import Console
        from rich.live import Live

        self._time = time
        self.live = Live(console=Console(stderr=True), refresh_per_second=4, transient=True)
        self.live.start()
        self.last = 0.0

    def tick(self, live) -> None:
        now = self._time.time()
        if now - self.last < 0.25:
            return
        self.last = now
        elapsed = max(0.0, now - live.started)
        if elapsed == 0:
            self.live.update("starting workers...")
            return
        parts = []
        for key, t in sorted(live.totals.items()):
            rejected = sum(t["rejected"].values())
            not_sent = sum(t.get("not_sent", {}).values())
            parts.append(f"{key} {live.rate(key):,.0f}/s ok" + (f", {rejected:,} rejected" if rejected else "")
                         + (f", {t['failed']:,} failed" if t["failed"] else "")
                         + (f", {not_sent:,} not sent" if not_sent else ""))
        shown = min(elapsed, live.duration)
        phase = "" if elapsed <= live.duration else " (counting)"
        label = f"{live.label} " if live.label else ""
        self.live.update(f"{label}[{shown:5.1f}/{live.duration:g}s]{phase} " + " | ".join(parts))

    def close(self) -> None:
        self.live.stop()


@secrets.command("rotate")
@click.argument("name")
@click.option("--env", "env_name", required=True, help="An AWS environment declared in the spec.")
@spec_sets
@json_option
@click.pass_obj
def secrets_rotate(obj: Ctx, name: str, env_name: str, sets, as_json: bool) -> None:
    """Replace secret NAME of an AWS environment in SSM, and what derives from it (htpasswd,
    the gateway certificate). The next `obskit promote --env NAME --apply` redeploys the services that
    read it and gives Aurora a rotated database password. Values are never printed."""
    from obskit.errors import UsageError
    from obskit.promote.secrets import rotate
    from obskit.spec.model import AwsEnvironment

    resolved = obj.load(sets)
    if not isinstance(resolved.environment(env_name), AwsEnvironment):
        raise UsageError(f"'{env_name}' is not an AWS environment; rotation is for secrets kept in SSM",
                         hint="for a local environment NAME, delete the entry from .obskit/secrets/NAME.json and run "
                              "`obskit up --env NAME`")
    result = rotate(resolved, env_name, name)
    from obskit.annotate import Event

    annotation = _annotate(Event("secrets-rotate", env_name, f"obskit secrets rotate {name}", {"secret": name},
                                 spec_sha256=resolved.digest()), project=_project(obj, sets), quiet=as_json)

    def human(data: dict) -> None:
        click.echo(f"rotated {data['secret']}: wrote {', '.join(data['parameters'])} (values never shown)")
        for note in data["notes"]:
            click.echo(f"  - {note}")

    _out(result.to_json() | {"annotation": annotation}, as_json, human)


@cli.command("promote")
@click.option("--env", "env_name", required=True, help="An AWS environment declared in the spec.")
@click.option("--plan", "mode", flag_value="plan", default=True, help="Show what would change (default).")
@click.option("--apply", "mode", flag_value="apply", help="Build and push the images, then apply the checked plan.")
@click.option("--destroy", "mode", flag_value="destroy", help="Destroy the environment (needs --allow-data-loss).")
@click.option("--allow-data-loss", is_flag=True, help="Apply a plan that destroys or replaces the database or buckets.")
@spec_sets
@json_option
@click.pass_obj
def promote_cmd(obj: Ctx, env_name: str, mode: str, allow_data_loss: bool, sets, as_json: bool) -> None:
    """Deploy an AWS environment with Terraform: the same config bytes as local, in images
    built FROM the pinned upstream images; secrets in SSM; one state per environment."""
    from obskit.promote.run import promote

    def line(text: str) -> None:
        if not as_json:
            click.echo(text, err=True)

    # A failure with --json prints a JSON object (with the failed checks) from main().
    resolved = obj.load(sets)
    result = promote(resolved, env_name, mode=mode, allow_data_loss=allow_data_loss, on_line=line)
    data = result.to_json()
    if mode == "apply":
        from obskit.annotate import Event

        data["annotation"] = _annotate(Event("promote", env_name, "obskit promote --apply",
                                             spec_sha256=resolved.digest()), project=_project(obj, sets),
                                             quiet=as_json)
    _out(data, as_json, _print_promote)


def _print_promote(data: dict) -> None:
    for c in data["checks"]:
        click.echo(f"{'ok ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}")
    p = data["plan"]
    click.echo(f"plan: {p.get('create', 0)} to create, {p.get('update', 0)} to update, "
               f"{p.get('replace', 0)} to replace, {p.get('delete', 0)} to delete")
    for loss in data["data_losses"]:
        click.echo(f"  data loss allowed: {loss}")
    if data["secrets_written"]:
        click.echo(f"secrets written to SSM: {len(data['secrets_written'])} (values never shown)")
    if data.get("secrets_to_write"):
        click.echo(f"secrets --apply would write to SSM: {', '.join(data['secrets_to_write'])}")
    for note in data.get("notes", []):
        click.echo(note)
    if data.get("kept"):
        click.echo("kept (data, and the keys that encrypt it): " + ", ".join(data["kept"]))
    if data["applied"]:
        outputs = data["outputs"]
        click.echo(f"applied. gateway: {outputs.get('url', '?')}  grafana: {outputs.get('grafana_url', '?')}")
        for o in data["verify"]:
            click.echo(f"{'PASS' if o['ok'] else 'FAIL'}  {o['name']}: {o['detail']}")
    else:
        click.echo("nothing applied (run with --apply to deploy)")


@cli.command("parity")
@click.argument("env_a")
@click.argument("env_b")
@spec_sets
@json_option
@click.pass_obj
def parity_cmd(obj: Ctx, env_a: str, env_b: str, sets, as_json: bool) -> None:
    """Show that ENV_A and ENV_B run byte-identical configs; list their binding
    differences side by side. Exits 6 on any config drift."""
    from obskit.parity import ConfigDrift, parity

    result = parity(obj.load(sets), env_a, env_b)
    _out(result.to_json(), as_json, _print_parity)
    if not result.ok:
        raise ConfigDrift(f"{len(result.drift)} config file(s) differ between {env_a} and {env_b}",
                          hint="configs must be byte-identical; move what differs into a binding")


def _print_parity(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    a, b = data["env_a"], data["env_b"]
    console = Console(width=max(Console().width, 120))
    if data["ok"]:
        console.print(f"configs and image Dockerfiles: {len(data['identical'])} files byte-identical in {a} and {b}")
    else:
        console.print(f"configs and image Dockerfiles: {len(data['drift'])} file(s) DIFFER ({len(data['identical'])} identical):")
        for d in data["drift"]:
            console.print(f"  {d['path']}: {a} {d[a] or 'missing'}, {b} {d[b] or 'missing'}")
    table = Table(title=f"Bindings that differ ({len(data['bindings'])})", title_justify="left")
    for col in ("service", "variable", a, b):
        table.add_column(col, overflow="fold")
    for row in data["bindings"]:
        table.add_row(row["service"], row["variable"], row[a], row[b])
    console.print(table)


@cli.group()
def alerts() -> None:
    """Alert rules, contact points and routing, as provisioned into Grafana."""


@alerts.command("list")
@env_option
@spec_sets
@json_option
@click.pass_obj
def alerts_list(obj: Ctx, env_name: str, sets, as_json: bool) -> None:
    """Every alert rule (obskit's stack rules and yours), then where notifications go."""
    from obskit.alerting import summary
    from obskit.render import render

    resolved = obj.load(sets)
    result = summary(resolved.spec, render(resolved, env_name))
    _out(result.to_json(), as_json, _print_alerts)


def _print_alerts(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rules = data["rules"]
    needed = 40 + sum(max([len(h)] + [len(str(v)) for v in vals]) + 3 for h, vals in (
        ("Rule", [r["name"] for r in rules]), ("Source", [r["source"] for r in rules]),
        ("Folder / group", [f"{r['folder']} / {r['group']}" for r in rules]), ("Tenant", [r["tenant"] for r in rules]),
        ("Condition", [f"{r['language']} {r['condition']}" for r in rules]), ("For", [r["pending"] for r in rules]),
        ("Every", [r["interval"] for r in rules]), ("Severity", [r["severity"] for r in rules]),
        ("Team", [r["team"] for r in rules])))
    console = Console(width=max(Console().width, 120, needed))
    table = Table(title="Alert rules", title_justify="left")
    # Names, tenants and short values never wrap (a rule name is one word, and is cut in
    # the middle by a folding column); the summary wraps between words.
    for col in ("Rule", "Source", "Folder / group", "Tenant", "Condition", "For", "Every", "Severity", "Team"):
        table.add_column(col, no_wrap=True)
    table.add_column("Summary", overflow="fold", ratio=1, min_width=20)
    for r in data["rules"]:
        table.add_row(r["name"], r["source"], f"{r['folder']} / {r['group']}", r["tenant"],
                      f"{r['language']} {r['condition']}", r["pending"], r["interval"], r["severity"],
                      r["team"], r["summary"])
    console.print(table)
    if not data["contact_points"]:
        console.print("Notifications: no contact points declared; alerts show in Grafana only "
                      "(declare alerting.contact_points and alerting.policy to notify).")
        return
    routes = Table(title="Notification routing (first match wins unless 'continue')", title_justify="left")
    for col in ("Alerts matching", "Go to", "Muted during", "Continue"):
        routes.add_column(col)
    kinds = {c["name"]: c["type"] for c in data["contact_points"]}
    for r in data["routes"]:
        routes.add_row(r["match"], f"{r['receiver']} ({kinds.get(r['receiver'], '?')})",
                       ", ".join(r["mute_timings"]) or "-", "yes" if r["continue"] else "no")
    console.print(routes)


@cli.command()
@env_option
@spec_sets
@click.option("--only", "kinds", multiple=True, callback=lambda ctx, p, v: _verify_kinds(v),
              help="Run only checks of these kinds (repeatable): logs, metrics, isolation_logs, isolation_metrics, "
                   "grafana_health, grafana_datasources, grafana_dashboards, grafana_alerting, logql, promql.")
@json_option
@click.pass_obj
def verify(obj: Ctx, env_name: str, sets, kinds: tuple[str, ...], as_json: bool) -> None:
    """Prove a running stack end to end: push, query back, isolation, Grafana."""
    from obskit import stack
    from obskit.verify import cases_for_endpoints, outcomes_json, report, run_verify

    from obskit.errors import UsageError

    from obskit.runtime.process import running_endpoints

    project = _project(obj, sets)
    notes: list[str] = []  # a compose stack on other ports than the spec's
    ep, note = running_endpoints(project, env_name, stack.endpoints(project, env_name, notes=notes))
    note = note or next(iter(notes), None)
    if note:
        click.echo(f"note: {note}", err=True)
    echo = None if as_json else (lambda o: click.echo(
        f"{'PASS' if o.ok else 'FAIL'}  {o.seconds:6.2f}s  {o.name}: {o.detail}"))
    cases = cases_for_endpoints(project.spec, ep, kinds or None)
    if kinds and not cases:
        raise UsageError(f"no check of kind {', '.join(kinds)} applies to the '{env_name}' stack",
                         hint="it runs without Grafana or Mimir, or declares no such case under verify.cases")
    outcomes = run_verify(ep, cases, deadline_seconds=project.spec.verify.deadline_seconds, on_result=echo,
                          env_name=env_name)
    if as_json:
        click.echo(outcomes_json(outcomes))
    else:
        click.echo(report(outcomes).splitlines()[-1])
    if any(not o.ok for o in outcomes):
        sys.exit(1)


def _verify_kinds(kinds: tuple[str, ...]) -> tuple[str, ...]:
    import typing

    from obskit.spec.model import VerifyCase

    known = typing.get_args(VerifyCase.model_fields["kind"].annotation)
    bad = [k for k in kinds if k not in known]
    if bad:
        import difflib

        close = difflib.get_close_matches(bad[0], known, n=1)
        raise click.BadParameter(f"unknown kind {bad[0]!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                                 + "; kinds: " + ", ".join(known))
    return kinds


# --------------------------------------------------------------------------- programs


@cli.group()
def programs() -> None:
    """The programs the process runtime runs: pinned releases, checked and cached per user."""


@programs.command("install")
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option("--from", "from_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Take the release files from this folder (downloaded by hand, with their checksum files) "
                   "instead of the network.")
@json_option
def programs_install(names: tuple[str, ...], from_dir: Path | None, as_json: bool) -> None:
    """Download and install pinned releases (default: all) into the per-user cache.

    Each file is checked against the checksum file its project publishes; a mismatch
    installs nothing. A program already installed is left as it is. Proxies are taken
    from HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
    """
    from obskit import programs as progs

    shown: dict[str, int] = {}

    def progress(what: str, done: int, total: int | None) -> None:
        if as_json:
            return
        step = (done * 10 // total) if total else done >> 24  # every 10 %, or every 16 MiB
        if shown.get(what) == step and done != total:
            return
        shown[what] = step
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        click.echo(f"  {what}: {size}", err=True)

    say = (lambda _: None) if as_json else (lambda line: click.echo(line, err=True))
    rows = progs.install(list(names) or None, from_dir=from_dir, progress=progress, say=say)
    if as_json:
        click.echo(json.dumps({"ok": True, "programs": rows}, indent=2, sort_keys=True))
    else:
        fresh = [r for r in rows if r["done"] == "installed"]
        click.echo(f"{len(fresh)} installed, {len(rows) - len(fresh)} already there, in {progs.cache_dir()}; "
                   "the process runtime finds them there after PATH.")


@programs.command("list")
@json_option
def programs_list(as_json: bool) -> None:
    """Show what is pinned, what is installed, and where each comes from."""
    from obskit import programs as progs

    rows = progs.status()

    def human(rows):
        click.echo(f"cache: {progs.cache_dir()}")
        for r in rows:
            state = f"installed  {r['path']}" if r["installed"] else "not installed"
            click.echo(f"{r['name']:<16} {r['version']:<9} {state}")
            click.echo(f"{'':<16} release  {r['release']} (checksums: {r['checksum_file']}; {r['license']})")
            if r["from"] and r["from"] != r["release"]:
                click.echo(f"{'':<16} from     {r['from']}")

    _out(rows, as_json, human)


# --------------------------------------------------------------------------- entry point


def _json_error(message: str, exit_code: int, hint: str | None = None, exc: BaseException | None = None) -> None:
    """With --json, a failure is a JSON object on stdout too (the text stays on stderr)."""
    if not _JSON_WANTED:
        return
    payload = {"ok": False, "error": message, "hint": hint, "exit_code": exit_code}
    if exc is not None and getattr(exc, "checks", None) is not None:
        payload["checks"] = getattr(exc, "checks")
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors and all(hasattr(e, "detail") for e in errors):
        payload["errors"] = [{"source": e.source, "key": e.key, "message": e.detail, "hint": e.hint} for e in errors]
    elif exc is not None and hasattr(exc, "detail") and hasattr(exc, "key"):
        payload["errors"] = [{"source": exc.source, "key": exc.key, "message": exc.detail, "hint": exc.hint}]
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def main(argv: list[str] | None = None) -> None:
    global _JSON_WANTED
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0") or "--debug" in args
    _JSON_WANTED = "--json" in args  # also before click has parsed the flag (a bad argument)
    try:
        cli.main(args=argv, prog_name="obskit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        _json_error("aborted", 130)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        _json_error(exc.format_message(), exc.exit_code)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        _json_error("interrupted", 130)
        sys.exit(130)
    except (BrokenPipeError, _PipeClosed):
        # The reader went away (`obskit ... | head`): what it wanted, it got. Exit quietly,
        # and keep Python from reporting the pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - the one place that maps errors to exit codes
        from obskit.errors import ObskitError

        if debug:
            raise
        if isinstance(exc, ObskitError):
            click.echo(f"error: {exc}", err=True)
            _json_error(exc.message if not hasattr(exc, "errors") else str(exc), exc.exit_code, exc.hint, exc)
            sys.exit(exc.exit_code)
        text = f"unexpected {type(exc).__name__}: {exc}"
        click.echo(f"error: {text}\n  hint: rerun with --debug for the traceback, and please report it", err=True)
        _json_error(text, 1, "rerun with --debug for the traceback, and please report it")
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
