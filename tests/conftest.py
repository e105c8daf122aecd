"""Shared fixtures. Nothing here fakes a tool: where a real tool is missing, the tests
that need it skip with the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

AWS_ENV = textwrap.dedent(
    """\
    environments:
      local:
        kind: compose
      prod:
        kind: aws
        region: eu-west-1
        domain: obs.example.com
        hosted_zone_id: Z0123456789ABCDEFGHIJ
        bucket_prefix: acme-obs-prod-
    """
)


@pytest.fixture
def clean_env(monkeypatch):
    """No OBSKIT_* variables leak from the developer's shell into a test."""
    for key in list(os.environ):
        if key.startswith("OBSKIT"):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def write_spec(tmp_path):
    def write(text: str, name: str = "obskit.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def aws_spec(write_spec):
    return write_spec(AWS_ENV)


def sigint_as_a_terminal_gives_it() -> None:
    """preexec_fn for a child a test will Ctrl-C: SIGINT at its default, as a terminal gives
    it. A runner started in the background (`cmd &` in a script, as CI jobs can be) passes
    SIGINT on as ignored, and a program rightly keeps ignoring it; the test means Ctrl-C."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def obskit_cmd() -> list[str]:
    exe = shutil.which("obskit")
    return [exe] if exe else [sys.executable, "-m", "obskit.cli"]


@pytest.fixture
def run_obskit(tmp_path):
    """Run the real `obskit` command in a subprocess (by default in an empty folder)."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = False):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")}
        full_env.update(env or {})
        proc = subprocess.run(
            [*obskit_cmd(), *args],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"obskit {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


def require_tool(tool: str, why: str = "") -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not on PATH{': ' + why if why else ''}")
    return path


@pytest.fixture(scope="module")
def moto_aws(moto_s3):
    """Every AWS client of the module talks to moto's server (SSM, STS, ECR, S3...), with
    test credentials and no profile or config file of the machine's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", f"http://{moto_s3['endpoint']}")
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_CONFIG_FILE", "/nonexistent")
        mp.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    """A real S3 API (moto's server) on 127.0.0.1, with the spec's default buckets."""
    pytest.importorskip("moto", reason="moto[server] is not installed")
    exe = shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto_server is not on PATH (pip install 'moto[server]')")
    import boto3
    import requests

    from obskit.loopback import free_port
    from obskit.spec.model import Buckets

    from support import Proc, wait_until

    port = free_port()
    proc = Proc("moto", [exe, "-H", "127.0.0.1", "-p", str(port)], {}, tmp_path_factory.mktemp("moto")).start()
    try:
        wait_until("moto", lambda: requests.get(f"http://127.0.0.1:{port}/moto-api/", timeout=2).ok, 30, [proc])
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="obskit",
            aws_secret_access_key="obskit-secret",
            region_name="us-east-1",
        )
        for bucket in Buckets().model_dump().values():
            s3.create_bucket(Bucket=bucket)
        yield {"endpoint": f"127.0.0.1:{port}", "client": s3, "access_key": "obskit", "secret_key": "obskit-secret"}
    finally:
        proc.stop()


def pytest_configure(config):
    """With OBSKIT_TEST_NETNS set (`eval "$(.ci/engine env)"`), the whole run moves into the
    private engine's network namespace, where containers publish their ports: the README's
    test command stays the same, and the end-to-end tests reach the stack there."""
    ns = os.environ.get("OBSKIT_TEST_NETNS")
    if not ns or os.environ.get("OBSKIT_IN_NETNS") == ns:
        return
    ip = shutil.which("ip")
    if ip is None or os.geteuid() != 0:
        import warnings

        warnings.warn(f"OBSKIT_TEST_NETNS={ns} is set but `ip netns exec` needs root and iproute2: running here")
        return
    env = {**os.environ, "OBSKIT_IN_NETNS": ns}
    sys.stdout.flush()
    os.execve(ip, [ip, "netns", "exec", ns, sys.executable, "-m", "pytest", *config.invocation_params.args], env)


def host_network(command: list[str]) -> list[str]:
    """``command`` run in the host's network namespace: inside the engine's namespace (see
    pytest_configure) there is no route out, and a few tests need the package index
    (building and installing obskit's wheel as a new user would)."""
    handle = os.environ.get("OBSKIT_HOST_NET")  # `.ci/engine env` sets it
    if os.environ.get("OBSKIT_IN_NETNS") and handle and os.geteuid() == 0 and shutil.which("nsenter"):
        return ["nsenter", f"--net={handle}", *command]
    return command


@pytest.fixture
def no_docker_engine(monkeypatch, tmp_path):
    """No engine answers: the Docker client is pointed at a socket nobody serves, so the
    no-engine paths are tested on machines (and CI) that have an engine too."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody.sock")
