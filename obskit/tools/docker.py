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
    ensure_buildx()
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


def push_as(local: str, remote: str) -> str:
    """Tag ``local`` as ``remote`` (registry/repository:tag), push it, and return the
    reference by the registry's digest (registry/repository@sha256:...)."""
    docker = _docker()
    call(lambda: docker.image.tag(local, remote), error=ImageError)
    call(lambda: docker.image.push(remote, quiet=True), error=ImageError)
    inspected = call(lambda: docker.image.inspect(remote), error=ImageError)
    ref = digest_for(remote, list(inspected.repo_digests or []))
    if ref is None:
        raise ImageError("docker", ["docker", "push", remote], 1, f"{remote} was pushed but has no digest from its registry")
    return ref


def _repository(image: str) -> str:
    """The repository of a reference, as the engine lists it in RepoDigests: Docker Hub's
    names without ``docker.io/`` (and ``library/`` for official images), tag dropped."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.startswith("library/"):
        name = name[len("library/"):]
    return name


def digest_for(image: str, repo_digests: list[str]) -> str | None:
    """The RepoDigest of exactly ``image``'s repository (same registry, same path), or None.
    Another registry's copy of the same image (a mirror, a local registry) never counts."""
    want = _repository(image)
    for ref in repo_digests:
        repo, _, digest = ref.partition("@")
        if _repository(repo) == want and digest.startswith("sha256:"):
            return ref
    return None


def pinned(image: str) -> str:
    """``image`` pinned by registry digest (repo@sha256:...): pulled when not here, then
    inspected. An image already given with a digest is returned as it is."""
    if "@sha256:" in image:
        return image
    docker = _docker()
    if not call(lambda: docker.image.exists(image), error=ImageError):
        call(lambda: docker.image.pull(image, quiet=True), error=ImageError)
    inspected = call(lambda: docker.image.inspect(image), error=ImageError)
    ref = digest_for(image, list(inspected.repo_digests or []))
    if ref is None:
        # Here, but never pulled from its own registry (built or loaded on this machine):
        # only its registry (or the mirror standing in for it) knows its digest.
        call(lambda: docker.image.pull(image, quiet=True), error=ImageError)
        inspected = call(lambda: docker.image.inspect(image), error=ImageError)
        ref = digest_for(image, list(inspected.repo_digests or []))
    if ref is None:
        raise ImageError("docker", ["docker", "image", "inspect", image], 1,
                         f"{image} has no registry digest for its own repository "
                         f"(known: {', '.join(inspected.repo_digests or []) or 'none'})",
                         hint="pull it from its registry (or the registry mirror) once, or give it pinned as repo@sha256:...")
    return ref


def ensure_buildx() -> None:
    """Raise a one-line ToolNotFound unless ``docker buildx`` answers (image builds need
    BuildKit: the gateway's Dockerfile uses COPY --chmod)."""
    from obskit.errors import ObskitError, ToolNotFound
    from obskit.tools.run import run

    try:
        ok = run(["docker", "buildx", "version"], error=ImageError, timeout=30, check=False).returncode == 0
    except ObskitError:  # no docker at all, or it hung
        ok = False
    if not ok:
        raise ToolNotFound("docker buildx", hint="obskit's image builds need the buildx plugin (BuildKit): install "
                           "Docker's docker-buildx-plugin, or `go install github.com/docker/buildx/cmd/buildx@v0.19.3` "
                           "and link it as ~/.docker/cli-plugins/docker-buildx")
