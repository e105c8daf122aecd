"""The gateway in the real nginx image, run as compose runs it (same image, command,
environment, mounts and tmpfs folders from the rendered compose file), on a real engine.

Without an engine, or without the pinned nginx image, these skip and say why; CI runs
them on `.ci/engine`, whose nginx image keeps the official image's contract
(tests/standins/nginx/CONTRACT.md). These are the faults the project's own emulation of
the entrypoint (obskit.tools.nginx.prepare) hid: the envsubst output folder that must
exist, and the secrets folder nginx's workers must be able to enter.
"""

from __future__ import annotations

import base64

import pytest

from obskit.project import Project
from obskit.render import render, write_environment
from obskit.secrets import SecretStore, compose_environment, resolve
from obskit.spec.load import load_spec
from obskit.tools import compose as compose_tool

from engine_support import Container, engine_or_skip, image_or_skip, run_args, wait_https

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def gateway_service(tmp_path_factory):
    engine_or_skip()
    folder = tmp_path_factory.mktemp("engine-gateway")
    # The collector is not running here: the access log's syslog target is an address,
    # so the entrypoint's wait for its name (a compose network name) does not apply.
    resolved = load_spec(None, sets=[], environ={})
    project = Project.of(resolved, root=folder)
    files = render(resolved, "local")
    write_environment(files, project.env_dir("local"))
    values, _ = SecretStore(project.state_dir, "local").ensure(resolved.spec)
    model = compose_tool.validate(project.compose_file("local"), compose_environment(resolved.spec, "local", values))
    service = model["services"]["gateway"]
    service["environment"]["OBSKIT_GW_LOG_SYSLOG"] = "127.0.0.1:5514"
    image_or_skip(service["image"])
    from obskit import bindings

    password = resolve(bindings.tenant_password(resolved.spec.tenants[0].name, "read"), values)
    user = f"{resolved.spec.tenants[0].name}-read"
    return service, project.compose_file("local").parent, (user, password), values["gateway-ca-cert"]


def test_the_gateway_starts_in_the_real_image_and_authenticates(gateway_service):
    service, compose_dir, (user, password), _ca = gateway_service
    c = Container(run_args(service, compose_dir, publish=(8443,)))
    try:
        port = c.port(8443)
        health = wait_https(f"https://127.0.0.1:{port}/nginx-health", verify=False)
        assert health.status_code == 200, c.logs()
        # An authenticated read: the password is checked against the htpasswd file the
        # entrypoint wrote (a 500 here was "Permission denied" on the secrets folder).
        # Loki is not running, so the gateway answers for its upstream, not for itself.
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        answer = wait_https(f"https://127.0.0.1:{port}/loki/api/v1/labels", verify=False,
                            headers={"Authorization": auth})
        logs = c.logs()
        assert "Permission denied" not in logs, logs
        assert answer.status_code in (502, 503, 504), f"{answer.status_code}: {answer.text[:200]}\n{logs}"
        wrong = wait_https(f"https://127.0.0.1:{port}/loki/api/v1/labels", verify=False,
                           headers={"Authorization": "Basic " + base64.b64encode(f"{user}:nope".encode()).decode()})
        assert wrong.status_code == 401
    finally:
        c.remove()


def test_the_standin_refuses_a_missing_output_folder(gateway_service):
    """The real image's rule, kept by the stand-in: without the envsubst output folder
    nothing is rendered and nginx exits on the missing config (the gateway never started
    this way, in compose and on ECS alike)."""
    service, compose_dir, _auth, _ca = gateway_service
    c = Container(run_args(service, compose_dir, drop_tmpfs=("/etc/nginx/obskit",)))
    try:
        state = c.wait_exit()
        logs = c.logs()
        assert state["ExitCode"] != 0, logs
        assert "/etc/nginx/obskit is not writable" in logs, logs
        assert 'open() "/etc/nginx/obskit/nginx.conf" failed' in logs, logs
    finally:
        c.remove()


# --------------------------------------------------------------------------- the object store


def _compose_run(project, *args: str, timeout: float = 300) -> str:
    from obskit.stack import compose_project
    from obskit.tools.compose import _run

    stack = compose_project(project, "local", create_secrets=False)
    with stack._command() as cmd:
        return _run([*cmd, *args], timeout=timeout)


@pytest.fixture
def store_project(tmp_path):
    engine_or_skip()
    from obskit.spec.model import Images

    for image in (Images().versitygw, Images().gateway):
        image_or_skip(image)
    resolved = load_spec(None, sets=[f"project=store-{tmp_path.name[-8:].lower().replace('_', '-')}"], environ={})
    project = Project.of(resolved, root=tmp_path)
    write_environment(render(resolved, "local"), project.env_dir("local"))
    SecretStore(project.state_dir, "local").ensure(resolved.spec)
    yield project
    _compose_run(project, "down", "--volumes", "--remove-orphans")


def test_the_bucket_job_makes_every_bucket_in_versitygw_and_runs_again(store_project):
    """The default object store (versitygw's image) and the one bucket job (SigV4 PUTs with
    curl in the gateway's image): every bucket made, and a second run finds them made."""
    for _ in range(2):
        out = _compose_run(store_project, "run", "--rm", "--pull", "never", "create-buckets")
        assert out.count(": ready") == len(store_project.spec.object_store.buckets.model_dump()), out
    logs = _compose_run(store_project, "logs", "--no-color", "object-store")
    for bucket in store_project.spec.object_store.buckets.model_dump().values():
        assert logs.count(f"| PUT | /{bucket} ") == 2, logs[-2000:]


def test_the_bucket_job_fails_on_a_refusal(store_project):
    """A signature the store refuses fails the job (and so `up`), naming the answer."""
    from obskit.errors import ObskitError
    from obskit.stack import compose_project
    from obskit.tools.compose import _run

    stack = compose_project(store_project, "local", create_secrets=False)
    stack.secrets["OBSKIT_SECRET_OBJECT_STORE_SECRET_KEY"] = "not-the-key"
    with stack._command() as cmd:
        _run([*cmd, "up", "--detach", "--wait", "--wait-timeout", "120", "--pull", "never", "object-store"])
    # The store keeps the real key; the job signs with another one.
    good = compose_project(store_project, "local", create_secrets=False)
    with good._command() as cmd:
        _run([*cmd, "up", "--detach", "--force-recreate", "--wait", "--wait-timeout", "120", "--pull", "never",
              "--no-deps", "object-store"])
    with stack._command() as cmd:
        with pytest.raises(ObskitError) as info:
            _run([*cmd, "run", "--rm", "--pull", "never", "--no-deps", "create-buckets"])
    assert "HTTP 403" in str(info.value), info.value


# --------------------------------------------------------------------------- pulls


def test_up_pulls_only_what_is_missing_and_names_what_it_cannot_pull(store_project):
    """Images the engine holds are never pulled (no registry is asked); one it lacks and
    cannot pull is named, with what to do instead."""
    from obskit.stack import compose_project
    from obskit.tools.compose import ImageMissing

    stack = compose_project(store_project, "local", create_secrets=False)
    assert stack.pull_missing(["object-store", "create-buckets"]) == []
    # A pin nobody serves: the mirror has no such tag and there is no other registry.
    import yaml

    path = store_project.compose_file("local")
    doc = yaml.safe_load(path.read_text())
    doc["services"]["object-store"]["image"] = "versity/versitygw:v0.0.0-obskit-absent"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ImageMissing) as info:
        stack.pull_missing(["object-store"])
    assert "versity/versitygw:v0.0.0-obskit-absent is not on this machine and could not be pulled" in info.value.message
    assert "--images" in (info.value.hint or "")


# --------------------------------------------------------------------------- MinIO, from quay.io


def _minio_image() -> str:
    from obskit.spec.model import Images

    engine_or_skip()
    image = Images().minio
    image_or_skip(image)
    return image


def test_the_pinned_minio_image_is_pulled_from_the_engines_quay_registry():
    """dockerd mirrors only Docker Hub; quay.io names come from the engine's second registry,
    which is quay.io inside its namespace (TLS with a local CA, verified here; dockerd counts
    a registry on 127.0.0.0/8 as insecure). With the image removed from the engine, a pull of
    the pinned name brings back the same image, by the digest that registry serves; a tag it
    does not hold is not found (the namespace has no route out: nothing else is asked)."""
    import json
    import os

    import requests

    from obskit.tools.compose import image_present

    from engine_support import docker

    ca = os.environ.get("OBSKIT_ENGINE_QUAY_CA")
    if not ca:
        pytest.skip("needs .ci/engine's quay.io registry (OBSKIT_ENGINE_QUAY_CA: `.ci/engine env` sets it)")
    image = _minio_image()
    if docker("ps", "-aq", "--filter", f"ancestor={image}").stdout.split():
        pytest.skip(f"{image} is in use by a container here: not removing it")
    repo, tag = image.removeprefix("quay.io/").rsplit(":", 1)
    before = docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()

    docker("rmi", image)  # (if the pull below fails, `.ci/engine images` puts it back)
    assert not image_present(image)
    docker("pull", "-q", image)
    inspected = json.loads(docker("image", "inspect", image).stdout)[0]
    served = requests.get(f"https://quay.io/v2/{repo}/manifests/{tag}", verify=ca, timeout=10,
                          headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    served.raise_for_status()
    digest = served.headers["Docker-Content-Digest"]
    assert inspected["Id"] == before
    assert f"quay.io/{repo}@{digest}" in inspected["RepoDigests"], inspected["RepoDigests"]

    absent = docker("pull", f"quay.io/{repo}:RELEASE.2000-01-01T00-00-00Z", check=False)
    assert absent.returncode != 0 and "not found" in absent.stderr, absent.stderr


def test_the_minio_standin_reads_its_credentials_from_docker_secrets(tmp_path):
    """The official image's MINIO_ROOT_USER_FILE=access_key / MINIO_ROOT_PASSWORD_FILE=secret_key:
    with no MINIO_ROOT_* variables, MinIO takes its root credentials from /run/secrets; the
    health check's `mc ready local` waits for it; any other `mc` command is refused."""
    from engine_support import Container, docker

    image = _minio_image()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "access_key").write_text("obskit-test-user")
    (secrets / "secret_key").write_text("obskit-test-password-1")
    c = Container(["--mount", f"type=bind,source={secrets},target=/run/secrets,readonly=true",
                   image, "server", "/data"])
    try:
        ready = docker("exec", c.name, "mc", "ready", "local", timeout=120)
        assert "The cluster 'local' is ready" in ready.stdout

        def list_buckets(user: str, password: str) -> str:
            return docker("exec", c.name, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{user}:{password}",
                          "http://localhost:9000/").stdout

        assert list_buckets("obskit-test-user", "obskit-test-password-1") == "200", c.logs()
        assert list_buckets("minioadmin", "minioadmin") == "403"
        other = docker("exec", c.name, "mc", "ls", "local", check=False)
        assert other.returncode == 1 and "only `mc ready ALIAS` is implemented" in other.stderr
    finally:
        c.remove()
