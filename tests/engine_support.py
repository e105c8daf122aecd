"""Helpers for tests that run real images on a Docker engine (`.ci/engine up` gives one
with stand-in images under the pinned names). Nothing here emulates an image: a service
of the rendered compose file runs as `docker run` with the same image, command,
environment, mounts and tmpfs folders that compose would give it."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from obskit.errors import ObskitError


def engine_or_skip() -> None:
    from obskit.tools.compose import ensure_engine

    try:
        ensure_engine()
    except ObskitError as exc:
        pytest.skip(f"needs a Docker engine ({exc.message}); `.ci/engine up` starts a private one")


def image_or_skip(image: str) -> None:
    from obskit.tools.compose import image_present

    if not image_present(image):
        pull = subprocess.run(["docker", "pull", "-q", image], capture_output=True, text=True, timeout=300)
        if pull.returncode != 0:
            pytest.skip(f"image {image} is not on this engine and cannot be pulled")


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}... exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_args(service: dict, compose_dir: Path, *, drop_tmpfs: tuple[str, ...] = (),
             publish: tuple[int, ...] = ()) -> list[str]:
    """`docker run` arguments for one service of a normalised compose model (`docker
    compose config`), bind mounts resolved against the compose file's folder."""
    args: list[str] = []
    for key, value in sorted((service.get("environment") or {}).items()):
        args += ["--env", f"{key}={value if value is not None else ''}"]
    for mount in service.get("volumes") or []:
        if mount.get("type") == "bind":
            src = Path(mount["source"])
            if not src.is_absolute():
                src = (compose_dir / src).resolve()
            args += ["--mount", f"type=bind,source={src},target={mount['target']},readonly={str(mount.get('read_only', False)).lower()}"]
    for entry in service.get("tmpfs") or []:
        path, _, opts = entry.partition(":")
        if path in drop_tmpfs:
            continue
        args += ["--tmpfs", entry]
    for port in publish:
        args += ["--publish", f"127.0.0.1::{port}"]
    if service.get("entrypoint"):
        args += ["--entrypoint", service["entrypoint"][0]]
    args.append(service["image"])
    if service.get("entrypoint"):
        args += service["entrypoint"][1:]
    args += service.get("command") or []
    return args


class Container:
    """One container, always removed."""

    def __init__(self, args: list[str], name: str | None = None) -> None:
        self.name = name or f"obskit-test-{uuid.uuid4().hex[:10]}"
        docker("run", "--detach", "--name", self.name, *args)

    def logs(self) -> str:
        proc = docker("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def state(self) -> dict:
        import json

        return json.loads(docker("inspect", "--format", "{{json .State}}", self.name).stdout)

    def port(self, container_port: int) -> int:
        out = docker("port", self.name, f"{container_port}/tcp").stdout.split()[0]
        return int(out.rsplit(":", 1)[1])

    def wait_exit(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if not state["Running"]:
                return state
            time.sleep(0.5)
        raise AssertionError(f"{self.name} still runs after {timeout}s:\n{self.logs()}")

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.name, check=False)


def wait_https(url: str, *, timeout: float = 60, **kwargs) -> requests.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=5, **kwargs)
        except requests.RequestException as exc:
            last = exc
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout}s: {last}")
