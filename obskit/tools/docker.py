"""The docker chokepoint for images: build, tag, push and registry login, through
python-on-whales. Errors become DockerUnavailable (no engine) or ImageError with the
command, exit code and output."""

from __future__ import annotations

from pathlib import Path

from obskit.errors import ToolError
from obskit.tools.compose import call


class ImageError(ToolError):
    pass


def _docker():
    from python_on_whales import DockerClient

    return DockerClient()


def login(registry: str, username: str, password: str) -> None:
    docker = _docker()
    call(lambda: docker.login(server=registry, username=username, password=password), error=ImageError)


def build(context: Path, tag: str, *, platform: str = "linux/amd64") -> None:
    docker = _docker()
    call(lambda: docker.buildx.build(context, tags=[tag], platforms=[platform], load=True), error=ImageError)


def push(tag: str) -> None:
    docker = _docker()
    call(lambda: docker.image.push(tag, quiet=True), error=ImageError)


def digest(image: str) -> str | None:
    """The registry digest of a pulled image (repo@sha256:...), for pinning FROM lines."""
    docker = _docker()
    inspected = call(lambda: docker.image.inspect(image), error=ImageError)
    return inspected.repo_digests[0] if inspected.repo_digests else None
