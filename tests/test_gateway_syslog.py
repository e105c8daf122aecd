"""The gateway's syslog target (the collector) stays resolvable: the entrypoint script
waits for the name before nginx starts and reloads nginx when the address changes."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from conftest import REPO

SCRIPT = REPO / "configs" / "gateway" / "entrypoint.d" / "25-obskit-syslog-target.sh"


def _run(target: str, **extra: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "OBSKIT_GW_LOG_SYSLOG": target, **extra}
    proc = subprocess.Popen(["sh", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the watcher it leaves in the background
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_an_ip_address_needs_no_waiting_and_no_watcher():
    start = time.monotonic()
    result = _run("127.0.0.1:5514", OBSKIT_GW_SYSLOG_WAIT="5")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start < 5


def test_a_name_that_never_resolves_fails_clearly_after_the_wait():
    start = time.monotonic()
    result = _run("otelcol.obskit-test.invalid:5514", OBSKIT_GW_SYSLOG_WAIT="2")
    assert result.returncode == 1
    assert "otelcol.obskit-test.invalid does not resolve after 2s" in result.stderr
    assert time.monotonic() - start >= 2


def test_a_name_that_resolves_starts_nginx_at_once():
    result = _run("localhost:5514", OBSKIT_GW_SYSLOG_WAIT="2")
    assert result.returncode == 0, result.stderr
