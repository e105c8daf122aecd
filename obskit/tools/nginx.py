"""The nginx chokepoint: prepare a gateway the way the nginx image does, test it, run it.

The official image runs ``envsubst`` over ``/etc/nginx/templates/*.template`` for the
variables defined in its environment that match ``NGINX_ENVSUBST_FILTER`` (``^OBSKIT_``
for obskit), and runs the scripts in ``/docker-entrypoint.d``. :func:`prepare` does the
same on this machine with the same rendered bytes, so tests run what containers run.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from obskit.errors import NginxError
from obskit.tools.run import run, which

ENVSUBST_FILTER = re.compile(r"^OBSKIT_")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def envsubst(text: str, environ: Mapping[str, str], pattern: re.Pattern[str] = ENVSUBST_FILTER) -> str:
    """GNU envsubst restricted to defined variables matching ``pattern``.

    ``$NAME`` and ``${NAME}`` are replaced when NAME is defined and matches; anything
    else (nginx's own ``$host``, ``$remote_user``, ...) is left exactly as it is.
    """

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in environ and pattern.search(name):
            return environ[name]
        return m.group(0)

    return _VAR.sub(sub, text)


def undefined_references(text: str, environ: Mapping[str, str]) -> set[str]:
    """OBSKIT_* variables a template uses that ``environ`` does not define."""
    names = {a or b for a, b in _VAR.findall(text)}
    return {n for n in names if ENVSUBST_FILTER.search(n) and n not in environ}


@dataclass(frozen=True)
class Prepared:
    conf: Path  # the main nginx.conf, ready to run
    environ: dict[str, str]


def prepare(gateway_dir: Path, environ: Mapping[str, str]) -> Prepared:
    """Run the entrypoint scripts and envsubst the templates, as the nginx image does.

    ``gateway_dir`` is the rendered ``configs/gateway`` folder; ``environ`` holds every
    binding of the gateway service, resolved (secrets included).
    """
    env = {k: str(v) for k, v in environ.items()}
    conf_dir = Path(env["OBSKIT_GW_CONF_DIR"])
    conf_dir.mkdir(parents=True, exist_ok=True)
    for script in sorted((gateway_dir / "entrypoint.d").glob("*.sh")):
        run(["sh", str(script)], env=env, error=NginxError, timeout=30)
    for template in sorted((gateway_dir / "templates").glob("*.template")):
        text = template.read_text()
        (conf_dir / template.name[: -len(".template")]).write_text(envsubst(text, env))
    return Prepared(conf_dir / "nginx.conf", env)


# nginx reads "resolve" on an upstream server (re-resolving its name at run time) from 1.27.3.
UPSTREAM_RESOLVE_SINCE = (1, 27, 3)


def version() -> tuple[int, ...] | None:
    """The version of the nginx on PATH, or None without one."""
    if which("nginx") is None:
        return None
    result = run(["nginx", "-v"], error=NginxError, timeout=30)
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", result.stderr + result.stdout)
    return tuple(int(x) for x in m.groups()) if m else None


def supports_upstream_resolve(found: tuple[int, ...] | None = None) -> bool:
    """Whether this nginx (or ``found``) parses ``server NAME resolve`` in an upstream."""
    found = version() if found is None else found
    return found is not None and found >= UPSTREAM_RESOLVE_SINCE


def test_config(conf: Path) -> str:
    """``nginx -t`` on a prepared config; returns nginx's report, raises NginxError."""
    result = run(["nginx", "-t", "-q", "-c", str(conf), "-e", "stderr"], error=NginxError, timeout=60)
    return result.stderr


class Server:
    """nginx in the foreground as a child process (``daemon off``), for tests and benchmarks."""

    def __init__(self, conf: Path) -> None:
        self.conf = conf
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> "Server":
        exe = which("nginx")
        if exe is None:
            from obskit.errors import ToolNotFound
            from obskit.tools.run import INSTALL_HINTS

            raise ToolNotFound("nginx", hint=INSTALL_HINTS["nginx"])
        self.proc = subprocess.Popen(
            [exe, "-c", str(self.conf), "-e", "stderr", "-g", "daemon off;"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        return self

    def stop(self) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out = self.proc.stdout.read() if self.proc.stdout else ""
        return out

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_ready(self, check, timeout: float = 10.0) -> None:
        """Poll ``check()`` until it returns truthy; raise NginxError if nginx exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                out = self.stop()
                raise NginxError("nginx", [str(self.conf)], self.proc.returncode or 1, out)
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise NginxError("nginx", [str(self.conf)], -1, f"not ready after {timeout}s")
