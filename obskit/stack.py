"""The local stack's lifecycle: up, down, status, logs, and the endpoints verify needs.

Every docker call goes through :class:`obskit.tools.compose.ComposeProject`.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from obskit import bindings
from obskit.errors import ObskitError, UsageError
from obskit.project import Project
from obskit.render import Files, read_stamp, render, write_environment
from obskit.secrets import SecretStore, compose_environment, gateway_users
from obskit.spec.model import ComposeEnvironment, ProcessEnvironment
from obskit.tools.compose import ComposeProject, ServiceState, ensure_engine

ONE_SHOT = {"create-buckets"}
LOG_LINES_ON_FAILURE = 30


class PortInUse(ObskitError):
    exit_code = 2


class StackUnhealthy(ObskitError):
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, failing: list[str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failing = failing or []


def compose_env(project: Project, env_name: str) -> ComposeEnvironment:
    env = project.resolved.environment(env_name)
    if not isinstance(env, ComposeEnvironment):
        raise UsageError(
            f"environment '{env_name}' is {env.kind}, not a local compose stack",
            hint=f"use `obskit promote --env {env_name}` for AWS environments",
        )
    return env


# --------------------------------------------------------------------------- render


@dataclass(frozen=True)
class RenderState:
    path: Path
    rendered: bool  # False when what was on disk was current
    changed: list[str]
    files: Files = field(default_factory=dict, repr=False, compare=False)  # what is on disk now


def ensure_rendered(project: Project, env_name: str) -> RenderState:
    """Render when stale: a different spec hash, obskit version, or any file that differs."""
    files = render(project.resolved, env_name)
    dest = project.env_dir(env_name)
    stamp = read_stamp(dest)
    new_stamp = json.loads(files["stamp.json"])
    if stamp == new_stamp and all((dest / rel).is_file() for rel in files):
        return RenderState(dest, False, [], files)
    result = write_environment(files, dest)
    return RenderState(dest, True, result.changed, files)


# --------------------------------------------------------------------------- ports


@dataclass(frozen=True)
class PublishedPort:
    service: str
    port: int
    key: str  # the spec key that moves it


def published_ports(project: Project, env_name: str) -> list[PublishedPort]:
    env = compose_env(project, env_name)
    prefix = f"environments.{env_name}.ports"
    ports = [
        PublishedPort("gateway", env.ports.gateway_https, f"{prefix}.gateway_https"),
        PublishedPort("gateway", env.ports.gateway_http, f"{prefix}.gateway_http"),
        PublishedPort("otelcol", env.ports.otlp_grpc, f"{prefix}.otlp_grpc"),
    ]
    if project.spec.object_store.provider == "minio":
        ports.append(PublishedPort("object-store", env.ports.object_store_console, f"{prefix}.object_store_console"))
    return ports


def port_conflicts(project: Project, env_name: str, running: set[str]) -> list[PublishedPort]:
    """Published ports another process holds. Ports of this project's own running
    services are theirs already and are skipped (a second `up` is idempotent)."""
    env = compose_env(project, env_name)
    taken = []
    for p in published_ports(project, env_name):
        if p.service in running:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((str(env.bind_address), p.port))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    taken.append(p)
                else:
                    raise
    return taken


def check_ports(project: Project, env_name: str, running: set[str]) -> None:
    taken = port_conflicts(project, env_name, running)
    if taken:
        first = taken[0]
        others = "".join(f"\n  also taken: port {p.port} ({p.key})" for p in taken[1:])
        raise PortInUse(
            f"port {first.port} is already in use on {compose_env(project, env_name).bind_address} "
            f"(spec key {first.key}){others}",
            hint=(f"stop what holds it, or move it in obskit.yaml: {first.key}: {_suggest(first.port)} "
                  f"(a one-off `obskit up --env {env_name} --set {first.key}=...` works too: later commands "
                  "follow the ports the running stack published)"),
        )


# (service, container port) -> the spec's port key: what the compose file publishes.
PUBLISHED = (("gateway", 8443, "gateway_https"), ("gateway", 8080, "gateway_http"),
             ("otelcol", 4317, "otlp_grpc"), ("object-store", 9001, "object_store_console"))


def running_ports(project: Project, env_name: str, states: list[ServiceState] | None = None) -> dict[str, int]:
    """Spec port key -> the host port the running stack published it on (`compose ps`, or
    ``states``). Empty when nothing runs, no engine answers, or it never came up here."""
    if states is None:
        values = SecretStore(project.state_dir, env_name).load()
        if not values or not project.compose_file(env_name).is_file():
            return {}
        try:
            states = _compose(project, env_name, values).ps()
        except ObskitError:
            return {}
    by_service = {s.service: s for s in states if s.state == "running"}
    out = {}
    for service, target, key in PUBLISHED:
        if service in by_service:
            port = by_service[service].published(target)
            if port:
                out[key] = port
    return out


def following(project: Project, env_name: str,
              states: list[ServiceState] | None = None) -> tuple[ComposeEnvironment, str | None]:
    """The environment with the ports its running stack published (a one-off --set may have
    moved them), for the commands that talk to it (status, verify, load, env-vars); with the
    sentence that says they are not the spec's, or None."""
    env = compose_env(project, env_name)
    running = running_ports(project, env_name, states)
    moved = {k: v for k, v in running.items() if getattr(env.ports, k) != v}
    if not moved:
        return env, None
    env = env.model_copy(update={"ports": env.ports.model_copy(update=moved)})
    spec_ports = compose_env(project, env_name).ports
    listed = ", ".join(f"{k} {v} (spec: {getattr(spec_ports, k)})" for k, v in sorted(moved.items()))
    keys = ", ".join(f"{k}: {v}" for k, v in sorted(moved.items()))
    return env, (f"the '{env_name}' stack runs on other ports than the spec's (as its last `obskit up` was told): "
                 f"{listed}; using its ports. Put `{keys}` under environments.{env_name}.ports in obskit.yaml "
                 "to make them the default")


# --------------------------------------------------------------------------- the database volume

# pki.new_ca backdates a CA's notBefore by this much: the secret store was made that much later.
CA_BACKDATE_SECONDS = 300
# Allowed between the host's clock (the store) and the engine's (the volume).
VOLUME_CLOCK_SLACK_SECONDS = 10


class StaleVolume(ObskitError):
    """Data volumes hold data another secret store made (exit 2: this machine's setup).
    obskit never deletes them: the user decides."""

    exit_code = 2


def data_volumes(project: Project, env_name: str) -> dict[str, str]:
    """The docker volumes of the rendered compose file: volume key -> the name compose gives
    it (``<project name>_<key>``, the project name as compose normalises it)."""
    import re

    import yaml

    doc = yaml.safe_load(project.compose_file(env_name).read_text())
    prefix = re.sub(r"[^a-z0-9_-]", "", project.project_name(env_name).lower())
    return {key: (spec or {}).get("name") or f"{prefix}_{key}" for key, spec in sorted((doc.get("volumes") or {}).items())
            if not (spec or {}).get("external")}


def store_born(values: dict):
    """When the secret store was made (its CA's notBefore, which pki backdates), UTC."""
    import datetime as dt

    from cryptography import x509

    cert = x509.load_pem_x509_certificate(values["gateway-ca-cert"].encode())
    return cert.not_valid_before_utc + dt.timedelta(seconds=CA_BACKDATE_SECONDS)


def check_data_volumes(project: Project, env_name: str, values: dict) -> None:
    """Refuse to start on data volumes older than this environment's secret store.

    Postgres sets its password when it first starts on an empty volume, and never again; the
    object store's buckets belong to the root key that made them. Volumes made before these
    secrets (an earlier project of the same name, or a secret store that was deleted and
    generated anew) hold another password and other owners: Grafana would fail with
    `pq: password authentication failed`, the bucket job with BucketAlreadyExists. Volumes
    ``up`` made with these secrets are younger than they are. Nothing is deleted here."""
    import datetime as dt

    from obskit.tools import docker

    born = store_born(values)
    oldest_allowed = born - dt.timedelta(seconds=VOLUME_CLOCK_SLACK_SECONDS)
    created = docker.volumes_created(data_volumes(project, env_name).values())
    stale = {name: when for name, when in sorted(created.items()) if when < oldest_allowed}
    if not stale:
        return
    names = " ".join(stale)
    first = min(stale.values())
    store = SecretStore(project.state_dir, env_name).path
    raise StaleVolume(
        f"the data volumes {', '.join(stale)} were made before this environment's secrets "
        f"(volumes from {first:%Y-%m-%d %H:%M:%S} UTC, secrets {born:%Y-%m-%d %H:%M:%S} UTC): an earlier project "
        f"named '{project.spec.project}' (or a secret store since deleted) left them. Their Postgres password and "
        "bucket owner are not this project's: Grafana would fail with `pq: password authentication failed`",
        hint=(f"if their data is not needed: `docker volume rm {names}`, then `obskit up --env {env_name}` again; "
              f"to keep it, put back the secret store that made it ({_display(store, project)}), "
              "or give this project another name (spec key `project`)"),
    )


def _display(path: Path, project: Project) -> str:
    try:
        return str(path.relative_to(project.root))
    except ValueError:
        return str(path)


def _suggest(port: int) -> int:
    for candidate in range(port + 1000, port + 1100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
                return candidate
            except OSError:
                continue
    return port + 1000


# --------------------------------------------------------------------------- lifecycle


def compose_project(project: Project, env_name: str, *, create_secrets: bool) -> ComposeProject:
    compose_env(project, env_name)
    store = SecretStore(project.state_dir, env_name)
    values = store.ensure(project.spec)[0] if create_secrets else store.load()
    if not values:
        raise ObskitError(
            f"environment '{env_name}' has never been brought up here (no secrets yet)",
            hint=f"run `obskit up --env {env_name}`",
        )
    return _compose(project, env_name, values)


def _compose(project: Project, env_name: str, values: dict) -> ComposeProject:
    return ComposeProject(
        project.compose_file(env_name),
        project.project_name(env_name),
        compose_environment(project.spec, env_name, values),
    )


@dataclass
class UpResult:
    render: RenderState
    secrets_created: list[str]
    services: list[ServiceState]
    urls: dict[str, str]
    ca_file: Path
    outcomes: list = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # component -> local tag (image delivery)
    # What this up did, in the process runtime's terms: kept, restarted, started, stopped.
    changes: dict[str, list[str]] = field(default_factory=dict)


def write_ca(project: Project, env_name: str, values: dict) -> Path:
    """The gateway's CA certificate (public) where clients can point at it."""
    path = project.state_dir / "secrets" / f"{env_name}-ca.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(values["gateway-ca-cert"])
    path.chmod(0o644)
    return path


def urls(project: Project, env_name: str, states: list[ServiceState] | None = None) -> dict[str, str]:
    """Where the stack answers: on the ports the running stack published (``states``, or
    asked of compose), else the spec's."""
    env = following(project, env_name, states)[0]
    base = f"https://{env.hostname}:{env.ports.gateway_https}"
    out = {
        "grafana": f"{base}{project.spec.grafana.sub_path}/",
        "gateway": base,
        "loki (push, query)": f"{base}/loki/api/v1/",
        "mimir (remote write, query)": f"{base}/prometheus/api/v1/",
        "otlp/http (collector)": f"{base}/v1/",
        "otlp/grpc (collector)": f"{env.bind_address}:{env.ports.otlp_grpc}",
    }
    if project.spec.object_store.provider == "minio":
        out["object store console"] = f"http://{env.bind_address}:{env.ports.object_store_console}/"
    return out


def up(
    project: Project,
    env_name: str,
    *,
    wait_timeout: int = 600,
    on_progress: Callable[[str, list[ServiceState]], None] | None = None,
) -> UpResult:
    """Render if stale, generate secrets once, start the stack health-gated."""
    compose_env(project, env_name)
    ensure_engine()
    render_state = ensure_rendered(project, env_name)
    store = SecretStore(project.state_dir, env_name)
    values, created = store.ensure(project.spec)
    ca = write_ca(project, env_name, values)
    stack = _compose(project, env_name, values)
    before = stack.ps()
    running = {s.service for s in before if s.state == "running"}
    check_ports(project, env_name, running)
    check_data_volumes(project, env_name, values)

    built = build_images(project, env_name, render_state.files, on_progress=on_progress)
    registry = compose_env(project, env_name).registry
    if built and registry:
        # As ECS runs them: pushed under ECR's repository names, run by registry digest.
        built = push_images(project, env_name, built, registry, on_progress=on_progress)
        stack.secrets.update({image_variable(c): ref for c, ref in built.items()})
    # Only images this engine lacks are pulled: a registry is never asked for one it has
    # (air-gapped machines, a mirror that lacks an image, images built here).
    # Services built here (a `build:` section) are left out by pull_missing itself.
    stack.pull_missing(on_pull=(lambda image: on_progress(f"pulling {image} (not on this machine)", []))
                       if on_progress else None)

    error: list[BaseException] = []

    def run_up() -> None:
        try:
            stack.up(wait_timeout=wait_timeout, pull="never", build=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            error.append(exc)

    worker = threading.Thread(target=run_up, name="obskit-compose-up", daemon=True)
    worker.start()
    while worker.is_alive():
        if on_progress:
            try:
                on_progress("waiting for health", stack.ps())
            except ObskitError:
                pass
        worker.join(timeout=2)
    states = stack.ps()
    if error:
        failing = unhealthy(states)
        if not failing and states and isinstance(error[0], ObskitError):
            # Some compose releases let `up --wait` fail on a one-shot job that exited 0;
            # every service is ready, so the stack is up.
            return UpResult(render_state, created, states, urls(project, env_name, states), ca, images=built,
                            changes=up_changes(before, states))
        if not failing:
            raise error[0]
        raise StackUnhealthy(failure_report(stack, failing), failing=[s.service for s in failing],
                             hint=f"fix the cause above, then `obskit up --env {env_name}` again; "
                                  f"`obskit logs SERVICE --env {env_name}` shows more")
    return UpResult(render_state, created, states, urls(project, env_name, states), ca, images=built,
                    changes=up_changes(before, states))


def up_changes(before: list[ServiceState], after: list[ServiceState]) -> dict[str, list[str]]:
    """What an up did, from `compose ps` before and after it, in the process runtime's
    terms: ``kept`` (the same container, running before and after), ``restarted`` (running
    before, a new container now: its configuration changed), ``started`` (not running
    before), ``stopped`` (running before, no longer part of the stack). A one-shot job that
    ran again in the same container is kept; in a new one, restarted."""
    was = {s.service: s for s in before}
    now = {s.service: s for s in after}
    out: dict[str, list[str]] = {"kept": [], "restarted": [], "started": [], "stopped": []}
    for name, s in sorted(now.items()):
        old = was.get(name)
        if old is None:
            out["started"].append(name)
        elif old.id and s.id and old.id != s.id:
            out["restarted" if old.state == "running" or name in ONE_SHOT else "started"].append(name)
        elif old.state == "running" or name in ONE_SHOT:
            out["kept"].append(name)
        else:
            out["started"].append(name)
    out["stopped"] = sorted(n for n, s in was.items() if n not in now and s.state == "running")
    return out


def build_images(project: Project, env_name: str, files: Files, *, on_progress=None) -> dict[str, str]:
    """With ``config_delivery: image``: build each component image that is not here yet
    from the rendered environment ``files`` (written to the environment folder, the build
    context), FROM its pinned image by digest, tagged as the compose file names it.
    Returns component -> local tag; nothing (and no build) with ``mount``."""
    from obskit import images
    from obskit.render import component_hashes
    from obskit.tools import docker

    if compose_env(project, env_name).config_delivery != "image":
        return {}
    env_dir = project.env_dir(env_name)
    used = {}
    for name, plan in images.image_plans(project.spec, env_name, files, component_hashes(files)).items():
        tag = images.local_image(project.spec, plan)
        used[name] = tag
        # The tag is a content hash: an image already tagged so is this one. Building it
        # again would give a new image id, and compose would recreate the container.
        if docker.image_exists(tag):
            continue
        if on_progress:
            on_progress(f"building {tag}", [])
        images.build(plan, env_dir, tag, platform=None)
    return used


def image_variable(component: str) -> str:
    """The compose variable that overrides a component image's reference."""
    return f"OBSKIT_IMAGE_{component.upper()}"


def push_images(project: Project, env_name: str, built: dict[str, str], registry: str, *,
                on_progress=None) -> dict[str, str]:
    """Push each built image to ``registry`` as ``<project>-<env>/<component>:<content tag>``
    (the names ECR gets) and return component -> registry/repository@sha256:digest."""
    from obskit import images
    from obskit.tools import docker

    out = {}
    for component, local in sorted(built.items()):
        tag = local.rsplit(":", 1)[1]
        remote = f"{registry}/{images.repository_name(project.spec, env_name, component)}:{tag}"
        if on_progress:
            on_progress(f"pushing {remote}", [])
        out[component] = docker.push_as(local, remote)
    return out


def unhealthy(states: list[ServiceState]) -> list[ServiceState]:
    bad = []
    for s in states:
        if s.service in ONE_SHOT:
            if s.state == "exited" and s.exit_code != 0:
                bad.append(s)
        elif not s.ready:
            bad.append(s)
    return bad


def failure_report(stack: ComposeProject, failing: list[ServiceState]) -> str:
    parts = []
    for s in failing:
        what = s.health or s.state
        if s.state == "exited":
            what = f"exited with code {s.exit_code}"
        try:
            logs = "".join(stack.logs([s.service], tail=LOG_LINES_ON_FAILURE))
        except ObskitError as exc:
            logs = f"(logs unavailable: {exc.message})"
        body = "\n".join("    " + line for line in logs.strip().splitlines()[-LOG_LINES_ON_FAILURE:])
        parts.append(f"service {s.service} is {what}; its last {LOG_LINES_ON_FAILURE} log lines:\n{body}")
    return "the stack did not become healthy:\n" + "\n".join(parts)


def down(project: Project, env_name: str, *, volumes: bool = False) -> bool:
    """Stop the stack; False when it was never brought up here (nothing to do)."""
    compose_env(project, env_name)
    ensure_engine()
    if not SecretStore(project.state_dir, env_name).load():
        return False
    ensure_rendered(project, env_name)
    compose_project(project, env_name, create_secrets=False).down(volumes=volumes)
    return True


def logs(project: Project, env_name: str, services: list[str] | None = None, *, tail: int = 200,
         follow: bool = False):
    """The stack's log text (follow: line by line). A stack that never ran here, or has no
    container (it was brought down), is one UsageError, as in the process runtime: there
    is nothing to show, and `compose logs --follow` would wait silently."""
    compose_env(project, env_name)
    ensure_engine()
    hint = f"start it with `obskit up --env {env_name}`"
    if not SecretStore(project.state_dir, env_name).load():
        raise UsageError(f"the '{env_name}' stack never ran here: there are no logs yet", hint=hint)
    ensure_rendered(project, env_name)
    stack = compose_project(project, env_name, create_secrets=False)
    states = stack.ps()
    if not states:
        raise UsageError(f"the '{env_name}' stack has no containers (it was brought down): there are no logs",
                         hint=hint)
    known = sorted(s.service for s in states)
    unknown = [n for n in services or [] if n not in known]
    if unknown:
        raise UsageError(f"no service {unknown[0]} in environment '{env_name}'", hint="services: " + ", ".join(known))
    yield from stack.logs(services, tail=tail, follow=follow)


def status(project: Project, env_name: str) -> list[ServiceState]:
    compose_env(project, env_name)
    ensure_engine()
    if not SecretStore(project.state_dir, env_name).load():
        return []
    return compose_project(project, env_name, create_secrets=False).ps()


# --------------------------------------------------------------------------- verify


def endpoints(project: Project, env_name: str, *, notes: list[str] | None = None):
    """How verify reaches an environment's stack, from the spec and the secret store; a
    running compose stack on the ports it published (``notes`` gets the sentence that says
    they are not the spec's)."""
    from obskit.verify import Endpoints, provisioned_alerting, provisioned_uids

    env = project.resolved.environment(env_name)
    values = SecretStore(project.state_dir, env_name).load()
    if not values:
        first = "obskit promote --apply" if env.kind == "aws" else "obskit up"
        raise ObskitError(
            f"no secrets for environment '{env_name}' here", hint=f"run `{first} --env {env_name}` first"
        )
    from obskit.secrets import resolve

    ds, dash = provisioned_uids(project.env_dir(env_name) / "configs")
    rules, contacts = provisioned_alerting(project.env_dir(env_name) / "configs")
    if isinstance(env, ComposeEnvironment):
        ca: str | None = str(write_ca(project, env_name, values))
        env, note = following(project, env_name)
        if note and notes is not None:
            notes.append(note)
        base = f"https://{env.hostname}:{env.ports.gateway_https}"
    elif isinstance(env, ProcessEnvironment):
        ca = str(write_ca(project, env_name, values))
        base = f"https://{env.hostname}:{bindings.process_ports(project.spec, env.base_port)['gateway']['https']}"
    else:
        # In AWS the ALB answers with the ACM certificate: publicly trusted, no private CA.
        ca, base = None, f"https://{env.domain}"
    return Endpoints(
        gateway=base,
        grafana=f"{base}{project.spec.grafana.sub_path}",
        ca_file=ca,
        passwords={user: resolve(s, values) for user, s in gateway_users(project.spec).items()},
        grafana_admin=(project.spec.grafana.admin_user, resolve(bindings.grafana_admin_password(project.spec), values)),
        tenants=bindings.tenant_names(project.spec),
        datasource_uids=ds,
        dashboard_uids=dash,
        rule_uids=rules,
        contact_points=contacts,
        metric_suffixes=project.spec.mimir.otel_metric_suffixes,
        has_grafana=not (isinstance(env, ProcessEnvironment) and "grafana" in env.skip),
        has_mimir=not (isinstance(env, ProcessEnvironment) and "mimir" in env.skip),
    )
