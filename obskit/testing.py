"""A real obskit stack for your own tests (the `obskit_stack` pytest fixture uses this).

It renders the spec into a temporary folder with its own secrets and free host ports,
starts it the way `obskit up` does (docker compose under a unique project name, only
missing images pulled, every healthcheck waited for) or as processes on 127.0.0.1, and
always tears it down (volumes included): on normal exit, on failure, on Ctrl-C and on
SIGTERM.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from obskit.errors import DockerUnavailable


class NoDocker(Exception):
    """No Docker engine answers: the caller should skip."""


class NoBinaries(Exception):
    """The process runtime misses a program it needs: the caller should skip."""


@dataclass
class ObskitStack:
    """A running stack: endpoints, credentials and helpers for tests."""

    project_name: str
    env_name: str
    workdir: Path
    endpoints: object  # obskit.verify.Endpoints
    otlp_grpc: str  # host:port of the collector's OTLP/gRPC intake
    spec: object
    _runtime: object = field(repr=False, default=None)  # the process runtime's stack
    _closed: bool = field(default=False, repr=False)

    # -- for the application under test
    @property
    def gateway(self) -> str:
        return self.endpoints.gateway

    @property
    def ca_file(self) -> str:
        return self.endpoints.ca_file

    def credentials(self, tenant: str | None = None, role: str = "write") -> tuple[str, str]:
        return self.endpoints.auth(tenant or self.endpoints.tenants[0], role)

    def otlp_exporter_config(self, signal_name: str = "logs", tenant: str | None = None) -> dict:
        """Keyword arguments for an OpenTelemetry OTLP/HTTP exporter that writes straight
        into ``tenant``'s data through the gateway (logs to Loki, metrics to Mimir), e.g.
        ``OTLPLogExporter(**stack.otlp_exporter_config("logs"))``.

        (The collector's intake, ``/v1/<signal>``, pushes onward as collector.tenant.)
        """
        from obskit.verify import exporter_kwargs

        if signal_name not in ("logs", "metrics"):
            raise ValueError("the stack stores logs and metrics; traces have no backend")
        return exporter_kwargs(self.endpoints, tenant or self.endpoints.tenants[0], signal_name)

    def otlp_env(self, tenant: str | None = None) -> dict[str, str]:
        """The same as OTEL_EXPORTER_OTLP_* variables, for an app in another process."""
        from urllib.parse import quote

        tenant = tenant or self.endpoints.tenants[0]
        return {
            # SDKs append /v1/logs and /v1/metrics: the gateway's tenant-aware OTLP routes.
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"{self.gateway}/otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=" + quote(self.endpoints.auth_header(tenant, "write")),
            "OTEL_EXPORTER_OTLP_CERTIFICATE": self.ca_file,
        }

    # -- for assertions
    def query_logs(self, logql: str, tenant: str | None = None, since_seconds: int = 3600) -> list:
        from obskit.verify import query_logs

        return query_logs(self.endpoints, tenant or self.endpoints.tenants[0], logql, since_seconds=since_seconds)

    def query_metrics(self, promql: str, tenant: str | None = None) -> list:
        from obskit.verify import query_metrics

        if not self.endpoints.has_mimir:
            raise RuntimeError("this obskit stack runs without Mimir (no mimir program is installed): no metrics to query")
        return query_metrics(self.endpoints, tenant or self.endpoints.tenants[0], promql)

    def verify(self, kinds: Sequence[str] | None = None):
        from obskit.verify import cases_for_endpoints, run_verify

        return run_verify(self.endpoints, cases_for_endpoints(self.spec, self.endpoints, kinds),
                          deadline_seconds=self.spec.verify.deadline_seconds)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._runtime is not None:
                self._runtime.down(volumes=True)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def docker_available() -> str | None:
    """None when a Docker engine answers, else the reason it does not."""
    from obskit.errors import ObskitError
    from obskit.tools.compose import ensure_engine

    try:
        ensure_engine()
    except DockerUnavailable as exc:
        return f"no Docker engine answers ({exc.hint})"
    except ObskitError as exc:
        return str(exc)
    return None


def start_stack(
    spec: str | os.PathLike | None = None,
    *,
    sets: Sequence[str] = (),
    env_name: str | None = None,
    runtime: str = "compose",
) -> ObskitStack:
    """Bring a private copy of the stack up: with docker compose (raises NoDocker without an
    engine) or as processes on 127.0.0.1 (raises NoBinaries when a program is missing)."""
    if runtime == "process":
        return start_process_stack(spec, sets=sets, env_name=env_name or "process")
    env_name = env_name or "local"
    reason = docker_available()
    if reason:
        raise NoDocker(reason)

    from obskit.loopback import free_port
    from obskit.project import Project
    from obskit.runtime import ComposeStack
    from obskit.spec.load import load_spec

    # A unique project name (compose project, containers, volumes) and free host ports.
    name = f"obskit-test-{uuid.uuid4().hex[:10]}"
    ports = [
        f"environments.{env_name}.ports.{key}={free_port()}"
        for key in ("gateway_https", "gateway_http", "otlp_grpc", "object_store_console")
    ]
    resolved = load_spec(spec, sets=[*sets, f"project={name}", *ports])
    workdir = Path(tempfile.mkdtemp(prefix="obskit-stack-"))
    project = Project.of(resolved, root=workdir)
    rt = ComposeStack(project, env_name)
    env = resolved.spec.environments[env_name]
    stack = ObskitStack(
        project_name=project.project_name(env_name),
        env_name=env_name,
        workdir=workdir,
        endpoints=None,
        otlp_grpc=f"{env.bind_address}:{env.ports.otlp_grpc}",
        spec=resolved.spec,
        _runtime=rt,
    )
    _register_teardown(stack)
    try:
        # The same path as `obskit up`: render, secrets, only missing images pulled,
        # every healthcheck waited for (readiness probed through the engine).
        rt.up()
        stack.endpoints = rt.endpoints()
    except DockerUnavailable as exc:
        stack.close()
        raise NoDocker(str(exc)) from None
    except BaseException:
        stack.close()
        raise
    return stack


def start_process_stack(spec: str | os.PathLike | None = None, *, sets: Sequence[str] = (),
                        env_name: str = "process", attempts: int = 3) -> ObskitStack:
    """The stack as processes on a free block of loopback ports, in a private folder.

    Without a ``grafana`` or ``mimir`` program on PATH the stack runs without it (its checks
    are left out, and ``stack.endpoints.has_grafana`` / ``has_mimir`` say so, with a warning);
    any other missing program raises NoBinaries. A start that loses a port race is retried
    on another block.
    """
    from obskit.loopback import free_block
    from obskit.project import Project
    from obskit.runtime import ProcessStack
    from obskit.runtime.process import MissingBinaries, PortTaken, find_programs
    from obskit.spec.load import load_spec

    base_sets = [*sets, f"environments.{env_name}.kind=process"]
    resolved = load_spec(spec, sets=base_sets)
    env = resolved.environment(env_name)
    absent = []
    for optional in ("grafana", "mimir"):
        try:
            find_programs(resolved.spec, env_name, env, [optional])
        except MissingBinaries:
            absent.append(optional)
    if absent:
        import warnings

        warnings.warn(f"obskit_stack runs without {' and '.join(absent)}: not installed", stacklevel=2)
        base_sets.append(f"environments.{env_name}.skip=[{','.join(absent)}]")
    last: BaseException | None = None
    for _ in range(attempts):
        resolved = load_spec(spec, sets=[*base_sets, f"environments.{env_name}.base_port={free_block()}"])
        workdir = Path(tempfile.mkdtemp(prefix="obskit-stack-"))
        workdir.chmod(0o755)  # a private Postgres runs as another user when we are root
        project = Project.of(resolved, root=workdir)
        try:
            rt = ProcessStack(project, env_name)
        except MissingBinaries as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise NoBinaries(str(exc)) from None
        stack = ObskitStack(
            project_name=f"obskit-test-{uuid.uuid4().hex[:10]}",
            env_name=env_name,
            workdir=workdir,
            endpoints=None,
            otlp_grpc=f"127.0.0.1:{rt.processes.ports['otelcol']['grpc']}",
            spec=resolved.spec,
            _runtime=rt,
        )
        _register_teardown(stack)
        try:
            rt.up()
            stack.endpoints = rt.endpoints()
            return stack
        except MissingBinaries as exc:
            stack.close()
            raise NoBinaries(str(exc)) from None
        except PortTaken as exc:
            stack.close()
            last = exc
            continue
        except BaseException:
            stack.close()
            raise
    raise last  # type: ignore[misc]


def _register_teardown(stack: ObskitStack) -> None:
    """Tear down on interpreter exit and on SIGTERM too, not only on a clean finish."""
    atexit.register(stack.close)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        stack.close()
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: atexit and the fixture finalizer remain
        pass
