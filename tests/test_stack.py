"""The lifecycle at the python-on-whales chokepoint, run for real against the docker CLI.

There is no Docker engine here, so the real `docker compose` answers every lifecycle call
with "cannot connect": these tests assert the exact argument lists obskit sends and the
typed error it raises. Stale detection, ports and secrets need no engine at all.
"""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from obskit.errors import DockerUnavailable
from obskit.project import Project
from obskit.render import render
from obskit.secrets import SecretStore
from obskit.spec.load import load_spec
from obskit.stack import (
    PortInUse,
    check_ports,
    compose_project,
    ensure_rendered,
    following,
    published_ports,
    unhealthy,
    up_changes,
)
from obskit.tools.compose import ServiceState, parse_ps

from test_tools import needs_compose

@pytest.fixture
def _no_engine(monkeypatch, tmp_path):
    """No engine answers: the Docker client is pointed at a socket nobody serves (so these
    run on machines with an engine too)."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody.sock")


no_engine = pytest.mark.usefixtures("_no_engine")


@pytest.fixture
def project(tmp_path, clean_env):
    resolved = load_spec(None, environ={}, use_default_file=False)
    return Project.of(resolved, root=tmp_path)


def with_sets(project, *sets):
    return Project.of(load_spec(None, environ={}, use_default_file=False, sets=sets), root=project.root)


# --------------------------------------------------------------------------- stale detection


def test_render_only_when_stale(project):
    first = ensure_rendered(project, "local")
    assert first.rendered and "compose/docker-compose.yaml" in first.changed
    second = ensure_rendered(project, "local")
    assert not second.rendered and second.changed == []

    changed = ensure_rendered(with_sets(project, "loki.log_level=debug"), "local")
    assert changed.rendered
    # The config, and its config-hash label in the compose file and in the image's Dockerfile.
    assert set(changed.changed) == {"configs/loki/loki.yaml", "compose/docker-compose.yaml", "images/loki/Dockerfile"}

    stamp = project.env_dir("local") / "stamp.json"
    data = json.loads(stamp.read_text())
    data["obskit_version"] = "0.0.0"  # rendered by another obskit: stale
    stamp.write_text(json.dumps(data))
    assert ensure_rendered(with_sets(project, "loki.log_level=debug"), "local").rendered


def test_a_deleted_file_makes_the_environment_stale(project):
    ensure_rendered(project, "local")
    (project.env_dir("local") / "configs/loki/loki.yaml").unlink()
    assert ensure_rendered(project, "local").rendered
    assert (project.env_dir("local") / "configs/loki/loki.yaml").is_file()


# --------------------------------------------------------------------------- ports


def test_port_conflict_names_port_and_spec_key(project):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        p = with_sets(project, f"environments.local.ports.gateway_https={port}")
        with pytest.raises(PortInUse) as info:
            check_ports(p, "local", running=set())
        text = str(info.value)
        assert f"port {port} is already in use on 127.0.0.1" in text
        assert "environments.local.ports.gateway_https" in text
        assert "--set environments.local.ports.gateway_https=" in text
        assert info.value.exit_code == 2
        # The stack's own running gateway holds its own port: no conflict.
        check_ports(p, "local", running={"gateway"})
    finally:
        holder.close()


def test_published_ports_cover_every_host_port(project):
    """Every host port the compose file publishes is checked before up (MinIO's console
    only exists with provider minio)."""
    import yaml

    for sets in ([], ["object_store.provider=minio"]):
        p = with_sets(project, *sets)
        keys = {port.key.rsplit(".", 1)[1] for port in published_ports(p, "local")}
        model = yaml.safe_load(render(p.resolved, "local")["compose/docker-compose.yaml"])
        published = {int(m.split(":")[1]) for svc in model["services"].values() for m in svc.get("ports", [])}
        env = p.spec.environments["local"]
        assert {getattr(env.ports, k) for k in keys} == published, sets


# --------------------------------------------------------------------------- compose calls


@pytest.fixture
def compose(project):
    ensure_rendered(project, "local")
    SecretStore(project.state_dir, "local").ensure(project.spec)
    return compose_project(project, "local", create_secrets=False)


def base(project) -> list[str]:
    from obskit.tools.compose import compose_command

    return [
        *(os.path.basename(part) for part in compose_command()),
        "--file", str(project.compose_file("local")), "--project-name", "obskit-local", "--env-file", "<env-file>",
        "--project-directory", str(project.compose_file("local").parent),
    ]


def normalise(command: list[str]) -> list[str]:
    out = [os.path.basename(command[0])]
    for i, part in enumerate(command[1:], start=1):
        out.append("<env-file>" if command[i - 1] == "--env-file" else part)
    return out


@needs_compose
@no_engine
@pytest.mark.parametrize(
    "call, tail",
    [
        # Never a pull here: up pulls only missing images first (pull_missing).
        (lambda c: c.up(wait_timeout=300), ["up", "--detach", "--wait", "--wait-timeout", "300", "--pull", "never",
                                            "--remove-orphans", "--quiet-pull", "--no-build"]),
        (lambda c: c.down(volumes=False), ["down", "--remove-orphans"]),
        (lambda c: c.down(volumes=True), ["down", "--remove-orphans", "--volumes"]),
        (lambda c: c.ps(), ["ps", "--all", "--format", "json"]),
    ],
    ids=["up", "down", "down-volumes", "ps"],
)
def test_lifecycle_argument_lists(project, compose, call, tail):
    with pytest.raises(DockerUnavailable) as info:
        call(compose)
    assert normalise(info.value.command) == [*base(project), *tail]
    assert info.value.exit_code == 3
    # The secrets' env file lived only for the call.
    assert not list(project.compose_file("local").parent.glob(".obskit-compose-*"))


def test_secret_env_file_is_private_while_it_exists(compose, project):
    from obskit.tools.compose import secret_env_file

    with secret_env_file(compose.secrets, project.env_dir("local")) as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "OBSKIT_SECRET_POSTGRES_PASSWORD=" in path.read_text()
    assert not path.exists()


# --------------------------------------------------------------------------- states


PS_LINES = "\n".join(json.dumps(x) for x in [
    {"Service": "gateway", "Name": "obskit-local-gateway-1", "State": "running", "Health": "healthy", "ExitCode": 0,
     "Publishers": [{"URL": "127.0.0.1", "TargetPort": 8443, "PublishedPort": 8443, "Protocol": "tcp"},
                    {"URL": "", "TargetPort": 80, "PublishedPort": 0, "Protocol": "tcp"}]},
    {"Service": "loki", "Name": "obskit-local-loki-1", "State": "running", "Health": "starting", "ExitCode": 0, "Publishers": []},
    {"Service": "create-buckets", "Name": "obskit-local-create-buckets-1", "State": "exited", "Health": "", "ExitCode": 0},
    {"Service": "mimir-1", "Name": "obskit-local-mimir-1-1", "State": "exited", "Health": "", "ExitCode": 1},
    {"Service": "otelcol", "Name": "obskit-local-otelcol-1", "State": "running", "Health": "", "ExitCode": 0},
])


def test_parse_ps_lines_and_array():
    states = parse_ps(PS_LINES)
    assert [s.service for s in states] == ["create-buckets", "gateway", "loki", "mimir-1", "otelcol"]
    gateway = states[1]
    assert gateway.ports == ("127.0.0.1:8443->8443/tcp",) and gateway.ready
    assert parse_ps("[" + ",".join(PS_LINES.splitlines()) + "]") == states
    assert parse_ps("") == []


def test_unhealthy_ignores_finished_one_shot_jobs():
    bad = unhealthy(parse_ps(PS_LINES))
    assert [s.service for s in bad] == ["loki", "mimir-1"]
    failed_job = ServiceState("create-buckets", "x", "exited", "", 1)
    assert unhealthy([failed_job]) == [failed_job]


def _state(service, cid, state="running", ports=()):
    return ServiceState(service, f"p-{service}-1", state, "", 0, tuple(ports), id=cid)


def test_a_second_up_is_told_in_the_process_runtimes_terms():
    """`compose ps` before and after an up: a new container id is a restart, the same one is
    kept, a service that was not running is started, one that is gone is stopped. A one-shot
    job that ran again in its own container is kept. (On the engine: tests/e2e.)"""
    from obskit.cli import _up_changes

    before = [_state("gateway", "g1"), _state("loki", "l1"), _state("create-buckets", "c1", "exited"),
              _state("otelcol", "o1", "exited"), _state("old", "x1")]
    after = [_state("gateway", "g1"), _state("loki", "l2"), _state("create-buckets", "c1", "exited"),
             _state("otelcol", "o1"), _state("grafana", "n1")]
    changes = up_changes(before, after)
    assert changes == {"kept": ["create-buckets", "gateway"], "restarted": ["loki"],
                       "started": ["grafana", "otelcol"], "stopped": ["old"]}
    assert _up_changes(changes) == ("restarted loki (changed); started grafana, otelcol; stopped old (no longer part "
                                    "of the stack); 2 unchanged service(s) kept running")
    same = up_changes(after, after)
    assert _up_changes(same) == "nothing changed: all 5 services kept running"
    first = up_changes([], after)
    assert first["started"] == sorted(s.service for s in after) and not first["kept"]


def test_commands_follow_the_ports_the_running_stack_published(project):
    """The running gateway published on other ports than the spec's (a one-off --set): the
    ports of the running stack win, and one sentence names the spec keys to set."""
    from obskit.stack import running_ports, urls

    env = project.resolved.environment("local")
    moved = _state("gateway", "g1", ports=(f"127.0.0.1:{env.ports.gateway_https + 7}->8443/tcp",
                                           f"127.0.0.1:{env.ports.gateway_http}->8080/tcp"))
    otel = _state("otelcol", "o1", ports=(f"127.0.0.1:{env.ports.otlp_grpc}->4317/tcp",))
    assert running_ports(project, "local", [moved, otel]) == {
        "gateway_https": env.ports.gateway_https + 7, "gateway_http": env.ports.gateway_http,
        "otlp_grpc": env.ports.otlp_grpc}
    followed, note = following(project, "local", [moved, otel])
    assert followed.ports.gateway_https == env.ports.gateway_https + 7
    assert followed.ports.gateway_http == env.ports.gateway_http
    assert f"gateway_https {env.ports.gateway_https + 7} (spec: {env.ports.gateway_https})" in note
    assert f"`gateway_https: {env.ports.gateway_https + 7}` under environments.local.ports" in note
    assert urls(project, "local", [moved, otel])["gateway"].endswith(f":{env.ports.gateway_https + 7}")
    # Nothing running (or the spec's own ports): the spec's ports, no note.
    assert following(project, "local", [])[1] is None
    assert following(project, "local", [otel])[1] is None
    stopped = _state("gateway", "g1", state="exited", ports=moved.ports)
    assert following(project, "local", [stopped])[0].ports.gateway_https == env.ports.gateway_https


# --------------------------------------------------------------------------- CLI end to end


@no_engine
@pytest.mark.parametrize("args", [["up"], ["status"], ["down"], ["logs"], ["down", "--volumes"]])
def test_no_engine_is_one_sentence_and_exit_3(run_obskit, args):
    proc = run_obskit(*args)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.splitlines()[0] == "error: no Docker engine answers"
    assert "Traceback" not in proc.stderr


@no_engine
def test_up_without_engine_writes_nothing(run_obskit, tmp_path):
    run_obskit("up")
    assert not (tmp_path / ".obskit").exists()


def test_secrets_show(run_obskit, tmp_path):
    resolved = load_spec(None, environ={}, use_default_file=False)
    values, _ = SecretStore(tmp_path / ".obskit", "local").ensure(resolved.spec)
    listing = run_obskit("secrets", "show", check=True).stdout
    assert "tenant-apps-write-password  (gateway user apps-write)" in listing
    assert values["tenant-apps-write-password"] not in listing  # listing never reveals values
    one = run_obskit("secrets", "show", "tenant-apps-write-password", check=True).stdout
    assert one == values["tenant-apps-write-password"] + "\n"
    wrong = run_obskit("secrets", "show", "tenant-apps-write-pasword")
    assert wrong.returncode == 2 and "did you mean 'tenant-apps-write-password'" in wrong.stderr


def test_secrets_show_before_up(run_obskit):
    proc = run_obskit("secrets", "show")
    assert proc.returncode == 2 and "run `obskit up --env local`" in proc.stderr


def test_up_refuses_an_aws_environment(run_obskit, aws_spec):
    proc = run_obskit("up", "--env", "prod", cwd=aws_spec.parent)
    assert proc.returncode in (2, 3)  # 3 when no engine answers first; 2 names the kind
    if proc.returncode == 2:
        assert "is aws: it runs on AWS, not here" in proc.stderr and "obskit promote --env prod" in proc.stderr
