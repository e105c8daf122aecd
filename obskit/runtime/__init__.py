"""Runtimes: one small interface over every way obskit runs a stack.

``compose`` (docker compose), ``process`` (plain processes on 127.0.0.1) and, for
deployment, ECS through ``obskit promote``. The CLI, the pytest plugin, verify and load
call only this interface::

    rt = runtime.for_env(project, "local")
    result = rt.up(on_progress=...)      # render if stale, secrets once, start, wait
    rt.status(); rt.logs(["loki"], follow=True); rt.endpoints(); rt.down(volumes=False)

Each ``up`` returns an :class:`obskit.stack.UpResult`; ``status`` a list of
:class:`obskit.tools.compose.ServiceState`.
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol

from obskit.errors import ObskitError, UsageError
from obskit.project import Project

KINDS = ("compose", "process")


class Runtime(Protocol):
    kind: str
    env_name: str

    def up(self, *, wait_timeout: int = 600, on_progress: Callable | None = None): ...

    def down(self, *, volumes: bool = False) -> bool: ...

    def status(self) -> list: ...

    def logs(self, services: list[str] | None, *, tail: int = 200, follow: bool = False) -> Iterator[str]: ...

    def endpoints(self): ...

    def urls(self) -> dict[str, str]: ...


def for_env(project: Project, env_name: str) -> Runtime:
    env = project.resolved.environment(env_name)
    if env.kind == "compose":
        return ComposeStack(project, env_name)
    if env.kind == "process":
        return ProcessStack(project, env_name)
    raise UsageError(
        f"environment '{env_name}' is {env.kind}: it runs on AWS, not here",
        hint=f"use `obskit promote --env {env_name}`",
    )


def pick_environment(project: Project, env_name: str | None, runtime: str | None) -> str:
    """The environment a command acts on: ``--env``, or with ``--runtime`` alone the first
    environment of that kind, or ``local``."""
    envs = project.spec.environments
    if runtime is None:
        return env_name or "local"
    if env_name is not None:
        kind = project.resolved.environment(env_name).kind
        if kind != runtime:
            of_kind = [n for n, e in envs.items() if e.kind == runtime]
            raise UsageError(
                f"environment '{env_name}' runs with {kind}, not {runtime}",
                hint=(f"use --env {of_kind[0]}" if of_kind else f"declare an environment with kind: {runtime}"),
            )
        return env_name
    of_kind = [n for n, e in envs.items() if e.kind == runtime]
    if not of_kind:
        raise UsageError(
            f"no environment runs with {runtime}",
            hint=f"declare one in obskit.yaml: environments: {{dev: {{kind: {runtime}}}}}",
        )
    return of_kind[0]


class ComposeStack:
    """The docker compose runtime (functions in :mod:`obskit.stack`)."""

    kind = "compose"

    def __init__(self, project: Project, env_name: str) -> None:
        self.project, self.env_name = project, env_name

    def up(self, *, wait_timeout: int = 600, on_progress: Callable | None = None):
        from obskit import stack

        return stack.up(self.project, self.env_name, wait_timeout=wait_timeout, on_progress=on_progress)

    def down(self, *, volumes: bool = False) -> bool:
        from obskit import stack

        return stack.down(self.project, self.env_name, volumes=volumes)

    def status(self) -> list:
        from obskit import stack

        return stack.status(self.project, self.env_name)

    def logs(self, services: list[str] | None, *, tail: int = 200, follow: bool = False) -> Iterator[str]:
        from obskit import stack

        for chunk in stack.logs(self.project, self.env_name, services, tail=tail, follow=follow):
            yield chunk[1].decode(errors="replace") if isinstance(chunk, tuple) else chunk

    def endpoints(self):
        from obskit import stack

        return stack.endpoints(self.project, self.env_name)

    def urls(self) -> dict[str, str]:
        from obskit import stack

        return stack.urls(self.project, self.env_name)


class ProcessStack:
    """The process runtime (:mod:`obskit.runtime.process`) with the project's render,
    secrets and CA around it, as compose has them."""

    kind = "process"

    def __init__(self, project: Project, env_name: str) -> None:
        from obskit.runtime.process import ProcessRuntime

        self.project, self.env_name = project, env_name
        self.processes = ProcessRuntime(project, env_name)

    def up(self, *, wait_timeout: int = 600, on_progress: Callable | None = None):
        from obskit.secrets import SecretStore
        from obskit.stack import UpResult, ensure_rendered, write_ca

        render_state = ensure_rendered(self.project, self.env_name)
        values, created = SecretStore(self.project.state_dir, self.env_name).ensure(self.project.spec)
        ca = write_ca(self.project, self.env_name, values)
        states = self.processes.up(values, rendered=render_state.path, on_progress=on_progress, wait_timeout=wait_timeout)
        return UpResult(render_state, created, states, self.urls(), ca)

    def down(self, *, volumes: bool = False) -> bool:
        return self.processes.down(volumes=volumes)

    def status(self) -> list:
        return self.processes.status()

    def logs(self, services: list[str] | None, *, tail: int = 200, follow: bool = False) -> Iterator[str]:
        return self.processes.logs(services, tail=tail, follow=follow)

    def endpoints(self):
        from obskit import stack

        return stack.endpoints(self.project, self.env_name)

    def urls(self) -> dict[str, str]:
        env = self.project.resolved.environment(self.env_name)
        ports = self.processes.ports
        base = f"https://{env.hostname}:{ports['gateway']['https']}"
        out = {
            "grafana": f"{base}{self.project.spec.grafana.sub_path}/",
            "gateway": base,
            "loki (push, query)": f"{base}/loki/api/v1/",
            "mimir (remote write, query)": f"{base}/prometheus/api/v1/",
            "otlp/http (collector)": f"{base}/v1/",
            "otlp/grpc (collector)": f"127.0.0.1:{ports['otelcol']['grpc']}",
        }
        if "grafana" in env.skip:
            del out["grafana"]
        if "mimir" in env.skip:
            del out["mimir (remote write, query)"]
        return out


__all__ = ["KINDS", "ComposeStack", "ObskitError", "ProcessStack", "Runtime", "for_env", "pick_environment"]
