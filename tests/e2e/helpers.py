"""Shared by the end-to-end tests: run the obskit CLI, write a throwaway project."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from obskit.loopback import free_port

PORT_KEYS = ("gateway_https", "gateway_http", "otlp_grpc", "object_store_console")


def obskit(cwd: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, without the developer's OBSKIT_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")} | (env or {})
    proc = subprocess.run([sys.executable, "-m", "obskit.cli", *args], cwd=cwd, env=clean,
                          capture_output=True, text=True, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"obskit {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_project(folder: Path, extra: str = "") -> Path:
    """An obskit.yaml with a unique project name, free host ports and ``extra`` spec text."""
    ports = {k: free_port() for k in PORT_KEYS}
    path = folder / "obskit.yaml"
    path.write_text(
        f"project: e2e-{uuid.uuid4().hex[:8]}\n" + extra
        + "environments:\n  local:\n    kind: compose\n    ports:\n"
        + "".join(f"      {k}: {v}\n" for k, v in ports.items())
    )
    return path
