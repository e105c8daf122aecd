"""The docker compose chokepoint, through python-on-whales.

Every compose call obskit makes goes through :func:`client` and :func:`call`, which turn
python-on-whales' DockerException into a typed :class:`ComposeError` (command, exit
code, output) and a missing engine into :class:`DockerUnavailable`.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, TypeVar

from obskit.errors import ComposeError, DockerUnavailable, ToolError, ToolNotFound

T = TypeVar("T")

NO_ENGINE_MARKERS = (
    "Cannot connect to the Docker daemon",
    "Is the docker daemon running",
    "error during connect",
    "docker.sock: connect",
    "failed to connect to the docker API",
)


def dotenv(values: Mapping[str, str]) -> str:
    """Values as a compose env file: double-quoted, with newlines and quotes escaped."""
    lines = []
    for key in sorted(values):
        value = values[key].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{key}="{value}"')
    return "\n".join(lines) + "\n"


@contextmanager
def secret_env_file(values: Mapping[str, str], directory: Path | None = None) -> Iterator[Path]:
    """A 0600 env file holding ``values`` for the duration of a compose call, then gone."""
    fd, name = tempfile.mkstemp(prefix=".obskit-compose-", suffix=".env", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(dotenv(values))
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def client(compose_file: Path, *, project_name: str | None = None, env_files: list[Path] | None = None):
    from python_on_whales import DockerClient

    return DockerClient(
        compose_files=[compose_file],
        compose_project_name=project_name,
        compose_env_files=list(env_files or []),
        compose_project_directory=compose_file.parent,
    )


def call(fn: Callable[[], T], *, error: type[ToolError] | None = None) -> T:
    """Run one python-on-whales call, translating its errors (ComposeError unless told)."""
    from python_on_whales.exceptions import DockerException

    try:
        return fn()
    except DockerException as exc:
        output = (exc.stdout or "") + (exc.stderr or "")
        if any(marker in output for marker in NO_ENGINE_MARKERS):
            raise DockerUnavailable(
                "no Docker engine answers",
                hint="start Docker (Docker Desktop, colima, or the docker service) and try again",
                command=[str(c) for c in exc.docker_command],
            ) from None
        kind = error or ComposeError
        tool = "docker compose" if kind is ComposeError else "docker"
        raise kind(tool, [str(c) for c in exc.docker_command], exc.return_code, output) from None
    except FileNotFoundError as exc:
        raise ToolNotFound("docker", hint="install Docker with the Compose v2 plugin") from exc


def validate(compose_file: Path, secrets: Mapping[str, str]) -> dict:
    """``docker compose config``: validates the file with every variable interpolated.

    Returns the normalised model (it contains secrets: never print it).
    """
    with secret_env_file(secrets, compose_file.parent) as env_file:
        docker = client(compose_file, env_files=[env_file])
        return call(lambda: docker.compose.config(return_json=True))


# --------------------------------------------------------------------------- the engine


def ensure_engine() -> None:
    """Raise DockerUnavailable (exit 3) unless a Docker engine answers."""
    from python_on_whales import DockerClient

    docker = DockerClient()
    call(lambda: docker.system.info())


# --------------------------------------------------------------------------- a project



@dataclass(frozen=True)
class ServiceState:
    """One service of a compose project as `docker compose ps` reports it."""

    service: str
    container: str
    state: str  # running, exited, created, restarting, ...
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    exit_code: int
    ports: tuple[str, ...] = field(default=())

    @property
    def ready(self) -> bool:
        if self.health:
            return self.health == "healthy"
        return self.state == "running"


def parse_ps(output: str) -> list[ServiceState]:
    """Parse `docker compose ps --format json` (one JSON object per line, or one array)."""
    text = output.strip()
    if not text:
        return []
    if text.startswith("["):
        items = json.loads(text)
    else:
        items = [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
    states = []
    for item in items:
        ports = tuple(
            sorted(
                f"{p.get('URL', '')}:{p['PublishedPort']}->{p['TargetPort']}/{p.get('Protocol', 'tcp')}"
                for p in item.get("Publishers") or []
                if p.get("PublishedPort")
            )
        )
        states.append(
            ServiceState(
                service=item.get("Service", ""),
                container=item.get("Name", ""),
                state=item.get("State", ""),
                health=item.get("Health", "") or "",
                exit_code=int(item.get("ExitCode") or 0),
                ports=ports,
            )
        )
    return sorted(states, key=lambda s: s.service)



class ComposeProject:
    """A rendered compose project plus the secrets it interpolates.

    Every docker compose call of obskit's lifecycle goes through here. The secrets reach
    compose through a 0600 env file that exists only for the duration of each call.
    """

    def __init__(self, compose_file: Path, project_name: str, secrets: Mapping[str, str]) -> None:
        self.compose_file = Path(compose_file)
        self.project_name = project_name
        self.secrets = dict(secrets)

    @contextmanager
    def _client(self) -> Iterator:
        with secret_env_file(self.secrets, self.compose_file.parent) as env_file:
            yield client(self.compose_file, project_name=self.project_name, env_files=[env_file])

    def base_command(self) -> list[str]:
        """The command every call starts with (the env file's name varies per call)."""
        with self._client() as docker:
            cmd = [str(part) for part in docker.compose.docker_compose_cmd]
        return cmd

    def up(self, *, wait_timeout: int = 300, pull: str = "missing", build: bool = True) -> None:
        """``up --wait``. ``build`` False: never build (the images are already here)."""
        with self._client() as docker:
            call(lambda: docker.compose.up(detach=True, wait=True, wait_timeout=wait_timeout, pull=pull,
                                           remove_orphans=True, quiet=True, no_build=not build))

    def pull(self, services: list[str] | None = None) -> None:
        """Pull the images of ``services`` (all when None)."""
        with self._client() as docker:
            call(lambda: docker.compose.pull(services, quiet=True))

    def down(self, *, volumes: bool = False) -> None:
        with self._client() as docker:
            call(lambda: docker.compose.down(volumes=volumes, remove_orphans=True, quiet=True))

    def ps(self) -> list[ServiceState]:
        from python_on_whales.utils import run as pow_run

        with self._client() as docker:
            cmd = docker.compose.docker_compose_cmd + ["ps", "--all", "--format", "json"]
            return parse_ps(call(lambda: pow_run(cmd)))

    def logs(self, services: list[str] | None = None, *, tail: int | None = None, follow: bool = False):
        """Log text, or an iterator of (stream, bytes) lines when following."""
        with self._client() as docker:
            if follow:
                yield from call(lambda: docker.compose.logs(services or [], tail=str(tail) if tail else None,
                                                            follow=True, stream=True))
            else:
                yield call(lambda: docker.compose.logs(services or [], tail=str(tail) if tail else None))
