"""The docker compose chokepoint, through python-on-whales.

Every compose call obskit makes goes through :func:`client` and :func:`call`, which turn
python-on-whales' DockerException into a typed :class:`ComposeError` (command, exit
code, output) and a missing engine into :class:`DockerUnavailable`.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping, TypeVar

from obskit.errors import ComposeError, DockerUnavailable, ToolNotFound

T = TypeVar("T")

NO_ENGINE_MARKERS = (
    "Cannot connect to the Docker daemon",
    "Is the docker daemon running",
    "error during connect",
    "docker.sock: connect",
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


def call(fn: Callable[[], T]) -> T:
    """Run one python-on-whales call, translating its errors."""
    from python_on_whales.exceptions import DockerException

    try:
        return fn()
    except DockerException as exc:
        output = (exc.stdout or "") + (exc.stderr or "")
        if any(marker in output for marker in NO_ENGINE_MARKERS):
            raise DockerUnavailable(
                "no Docker engine answers",
                hint="start Docker (Docker Desktop, colima, or the docker service) and try again",
            ) from None
        raise ComposeError("docker compose", list(exc.docker_command), exc.return_code, output) from None
    except FileNotFoundError as exc:
        raise ToolNotFound("docker", hint="install Docker with the Compose v2 plugin") from exc


def validate(compose_file: Path, secrets: Mapping[str, str]) -> dict:
    """``docker compose config``: validates the file with every variable interpolated.

    Returns the normalised model (it contains secrets: never print it).
    """
    with secret_env_file(secrets, compose_file.parent) as env_file:
        docker = client(compose_file, env_files=[env_file])
        return call(lambda: docker.compose.config(return_json=True))
