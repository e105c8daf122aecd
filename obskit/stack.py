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
            hint=f"stop what holds it, or move it: obskit up --set {first.key}={_suggest(first.port)}",
        )


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


def write_ca(project: Project, env_name: str, values: dict) -> Path:
    """The gateway's CA certificate (public) where clients can point at it."""
    path = project.state_dir / "secrets" / f"{env_name}-ca.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(values["gateway-ca-cert"])
    path.chmod(0o644)
    return path


def urls(project: Project, env_name: str) -> dict[str, str]:
    env = compose_env(project, env_name)
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
    running = {s.service for s in stack.ps() if s.state == "running"}
    check_ports(project, env_name, running)

    built = build_images(project, env_name, render_state.files, on_progress=on_progress)
    registry = compose_env(project, env_name).registry
    if built and registry:
        # As ECS runs them: pushed under ECR's repository names, run by registry digest.
        built = push_images(project, env_name, built, registry, on_progress=on_progress)
        stack.secrets.update({image_variable(c): ref for c, ref in built.items()})
    # Only images this engine lacks are pulled: a registry is never asked for one it has
    # (air-gapped machines, a mirror that lacks an image, images built here).
    stack.pull_missing(pulled_services(render_state.files) if built else None,
                       on_pull=(lambda image: on_progress(f"pulling {image} (not on this machine)", []))
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
            return UpResult(render_state, created, states, urls(project, env_name), ca, images=built)
        if not failing:
            raise error[0]
        raise StackUnhealthy(failure_report(stack, failing), failing=[s.service for s in failing],
                             hint="fix the cause above, then `obskit up` again; `obskit logs SERVICE` shows more")
    return UpResult(render_state, created, states, urls(project, env_name), ca, images=built)


def pulled_services(files: Files) -> list[str]:
    """With image delivery: the services whose images come from a registry."""
    import yaml

    doc = yaml.safe_load(files["compose/docker-compose.yaml"])
    return sorted(name for name, svc in doc["services"].items() if "build" not in svc)


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


def status(project: Project, env_name: str) -> list[ServiceState]:
    compose_env(project, env_name)
    ensure_engine()
    if not SecretStore(project.state_dir, env_name).load():
        return []
    return compose_project(project, env_name, create_secrets=False).ps()


# --------------------------------------------------------------------------- verify


def endpoints(project: Project, env_name: str):
    """How verify reaches an environment's stack, from the spec and the secret store."""
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
