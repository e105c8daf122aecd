"""Helpers for tests that run real servers on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Mapping, Sequence

import requests


class Proc:
    """A server as a child process, its output in a log file, always stopped."""

    def __init__(self, name: str, command: Sequence[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.command = list(command)
        self.env = {**os.environ, **env}
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Proc":
        fh = open(self.log, "wb")
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        fh.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def wait_until(what: str, check: Callable[[], bool], timeout: float, procs: Sequence[Proc] = ()) -> float:
    """Poll ``check`` until true; fail with the servers' logs on timeout or crash."""
    start = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - start < timeout:
        for p in procs:
            if not p.alive():
                raise AssertionError(f"{p.name} exited while waiting for {what}:\n{p.tail()}")
        try:
            if check():
                return time.monotonic() - start
        except (requests.RequestException, OSError, ValueError) as exc:
            last_error = exc
        time.sleep(0.25)
    logs = "\n\n".join(f"--- {p.name}\n{p.tail()}" for p in procs)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})\n{logs}")


def http_ok(url: str, **kw) -> bool:
    return requests.get(url, timeout=2, **kw).status_code == 200


@contextmanager
def running_gateway(plan, tmp: Path):
    """The real nginx gateway for a loopback plan, started and ready; yields the base URL
    and the CA file that verifies it. Stopped on exit."""
    from obskit.tools import nginx

    prepared = nginx.prepare(plan.rendered / "configs" / "gateway", plan.env["gateway"])
    ca = tmp / "ca.pem"
    ca.write_text(plan.secrets["gateway-ca-cert"])
    base = f"https://localhost:{plan.ports['gateway']['https']}"
    server = nginx.Server(prepared.conf).start()
    try:
        server.wait_ready(lambda: http_ok(f"{base}/nginx-health", verify=str(ca)))
        yield base, ca
    finally:
        server.stop()
