"""The docker chokepoint: every way obskit talks to a Docker engine, beside Compose
(:mod:`obskit.tools.compose`).

- images and volumes: build, tag, push, registry login, inspect, through python-on-whales;
- the Engine API over the engine's unix socket (:class:`Engine`), for what the docker CLI
  cannot say (the local ECS runner's exec-form health checks, see
  :mod:`obskit.runtime.ecs_local`).

Errors are typed: DockerUnavailable (exit 3) when no engine answers; otherwise a
:class:`obskit.errors.DockerError` (exit 4) with the command, exit code (or HTTP status)
and output: ImageError for the CLI's image and volume calls, EngineApiError for the API.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Iterable

from obskit.errors import DockerError, DockerUnavailable, ObskitError
from obskit.tools.compose import call

API = "/v1.41"  # Docker 20.10 and later


class ImageError(DockerError):
    """A docker CLI call (image or volume) failed."""


class EngineApiError(DockerError):
    """The Docker Engine API answered with an error."""


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


def volumes_created(names: Iterable[str]) -> dict[str, object]:
    """name -> when the engine made it (UTC datetime), for those of ``names`` that exist.
    Two docker calls whatever the number of names."""
    import datetime as dt

    docker = _docker()
    here = {v.name for v in call(lambda: docker.volume.list(), error=ImageError)}
    wanted = sorted(set(names) & here)
    if not wanted:
        return {}
    out = {}
    for volume in call(lambda: docker.volume.inspect(wanted), error=ImageError):
        created = volume.created_at
        out[volume.name] = created if created.tzinfo else created.replace(tzinfo=dt.timezone.utc)
    return out


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


# --------------------------------------------------------------------------- the Engine API


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def engine_socket() -> str:
    """The engine's unix socket, from DOCKER_HOST (Docker's default when unset)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise ObskitError(f"the local ECS runner talks to the engine on a unix socket; DOCKER_HOST is {host}",
                          hint="point DOCKER_HOST at the engine's unix:// socket (`.ci/engine run` does)")
    return host[len("unix://"):]


class Engine:
    """The Docker Engine API over its unix socket, one request at a time. An engine that
    does not answer is DockerUnavailable; an error answer is EngineApiError."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or engine_socket()

    def call(self, method: str, url: str, body: object = None, *, ok: Iterable[int] = (200, 201, 204),
             timeout: float = 120, raw: bool = False):
        conn = _UnixConnection(self.path, timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if data is not None else {}
            try:
                conn.request(method, API + url, body=data, headers=headers)
                answer = conn.getresponse()
                payload = answer.read()
            except OSError as exc:
                raise DockerUnavailable(f"no Docker engine answers at {self.path}: {exc}",
                                        hint="start one: `.ci/engine up`") from None
        finally:
            conn.close()
        if answer.status not in set(ok):
            raise EngineApiError("docker engine API", [method, url], answer.status, payload.decode(errors="replace"))
        if raw:
            return payload
        return json.loads(payload) if payload.strip() else None

    def exists(self, kind: str, name: str) -> bool:
        try:
            self.call("GET", f"/{kind}/{urllib.parse.quote(name, safe='')}/json")
            return True
        except EngineApiError as exc:
            if exc.returncode == 404:
                return False
            raise

    def pull(self, image: str) -> None:
        """Pull ``image`` from its registry (the engine's mirror for Docker Hub names). The
        answer is a stream of progress objects; an error arrives as one of them."""
        ref, _, digest = image.partition("@")
        name, tag = ref, "latest"
        last = ref.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = ref.rsplit(":", 1)
        query = urllib.parse.urlencode({"fromImage": name, "tag": digest or tag})
        out = self.call("POST", f"/images/create?{query}", raw=True, timeout=600).decode(errors="replace")
        for line in out.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if "error" in item:
                raise EngineApiError("docker engine API", ["pull", image], 1, item["error"])

    def logs(self, container: str, tail: int = 200) -> str:
        """The container's stdout and stderr (the multiplexed stream, demultiplexed)."""
        try:
            data = self.call("GET", f"/containers/{container}/logs?stdout=1&stderr=1&tail={tail}", raw=True)
        except EngineApiError:
            return ""
        out, i = [], 0
        while i + 8 <= len(data):
            size = int.from_bytes(data[i + 4:i + 8], "big")
            out.append(data[i + 8:i + 8 + size])
            i += 8 + size
        return b"".join(out).decode(errors="replace")

    def inspect(self, container: str) -> dict:
        return self.call("GET", f"/containers/{container}/json")

    def stats(self, container: str) -> dict:
        return self.call("GET", f"/containers/{container}/stats?stream=false")
