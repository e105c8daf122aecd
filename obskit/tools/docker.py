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


def build(context: Path, tag: str, *, file: Path | None = None, build_args: dict[str, str] | None = None,
          labels: dict[str, str] | None = None, platform: str | None = "linux/amd64") -> None:
    """Build ``context`` (with ``file`` as the Dockerfile) into the local image store as
    ``tag``. ``platform`` None builds for this machine (local stacks); ECS runs linux/amd64."""
    docker = _docker()
    call(lambda: docker.buildx.build(context, tags=[tag], file=file, build_args=build_args or {},
                                     labels=labels or {}, platforms=[platform] if platform else None, load=True),
         error=ImageError)


def image_exists(tag: str) -> bool:
    """Whether the local image store holds ``tag``."""
    docker = _docker()
    return call(lambda: docker.image.exists(tag), error=ImageError)


def push(tag: str) -> None:
    docker = _docker()
    call(lambda: docker.image.push(tag, quiet=True), error=ImageError)


def pinned(image: str) -> str:
    """``image`` pinned by registry digest (repo@sha256:...): pulled, then inspected. An
    image already given with a digest is returned as it is."""
    if "@sha256:" in image:
        return image
    docker = _docker()
    call(lambda: docker.image.pull(image, quiet=True), error=ImageError)
    inspected = call(lambda: docker.image.inspect(image), error=ImageError)
    repo = image.rsplit(":", 1)[0]
    for ref in inspected.repo_digests:
        if ref.split("@", 1)[0].endswith(repo.split("/")[-1]):
            return ref
    raise ImageError("docker", ["docker", "image", "inspect", image], 1, f"{image} has no registry digest")
