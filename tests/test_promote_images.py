"""promote --apply's image step (obskit.promote.run.push_images, the very function promote
calls) run for real against the engine's local registry, which stands in for ECR, then
every pushed image pulled back by its registry digest and opened.

What stands in for AWS: ECR's API is moto's (the repositories Terraform's module.ecr would
make, `get_authorization_token` for the login, `describe_images` for "already there"); the
one override is the registry host: ECR's token is for `<account>.dkr.ecr.<region>.amazonaws.com`,
and the same user and password log in to $OBSKIT_ENGINE_REGISTRY (127.0.0.1:5000 inside
`.ci/engine`'s namespace) instead. The login goes to a private DOCKER_CONFIG, never the
engine's shared one.

Needs `.ci/engine` (or any engine with buildx and a registry at $OBSKIT_ENGINE_REGISTRY);
without one these skip and say why. A component whose pinned base image is not on the
engine (no Grafana program on this machine, say) is left out and named.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid

import pytest
import requests

from obskit.images import copies, image_plans
from obskit.project import Project
from obskit.promote import cloud
from obskit.promote.run import push_images
from obskit.render import component_hashes, render, write_environment
from obskit.spec.load import load_spec

from conftest import AWS_ENV
from engine_support import docker, engine_or_skip

pytestmark = pytest.mark.docker

REGION = "eu-west-1"
REGISTRY = os.environ.get("OBSKIT_ENGINE_REGISTRY", "127.0.0.1:5000")
MANIFESTS = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
])


@pytest.fixture(scope="module")
def shipped(moto_aws, tmp_path_factory):
    """The image step run once: rendered prod environment, repositories in (moto's) ECR,
    login with ECR's credentials, then push_images to the local registry."""
    engine_or_skip()
    try:
        requests.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.skip(f"no image registry at {REGISTRY} (the ECR stand-in; `.ci/engine up` starts one): {exc}")
    from obskit.tools.compose import image_present

    root = tmp_path_factory.mktemp("promote-images")
    name = f"p{uuid.uuid4().hex[:6]}"
    (root / "obskit.yaml").write_text(f"project: {name}\ntenants:\n  - name: apps\n" + AWS_ENV)
    resolved = load_spec(root / "obskit.yaml", environ={})
    project = Project.of(resolved, root=root)
    files = render(resolved, "prod")
    write_environment(files, project.env_dir("prod"))
    plans = image_plans(resolved.spec, "prod", files, component_hashes(files))
    left_out = {c: p.base for c, p in plans.items() if not image_present(p.base)}
    plans = {c: p for c, p in plans.items() if c not in left_out}
    if "gateway" not in plans:
        pytest.skip(f"the gateway's base image {left_out['gateway']} is not on this engine")

    ecr = cloud.client("ecr", REGION)
    for plan in plans.values():  # what Terraform's module.ecr makes before the push
        ecr.create_repository(repositoryName=plan.repository, imageTagMutability="IMMUTABLE")
    host, user, password = cloud.ecr_credentials(REGION)
    assert host.endswith(f".dkr.ecr.{REGION}.amazonaws.com") and user == "AWS"

    config = tmp_path_factory.mktemp("docker-config")
    shared = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    if os.path.isdir(os.path.join(shared, "cli-plugins")):  # buildx, compose
        os.symlink(os.path.join(shared, "cli-plugins"), config / "cli-plugins")
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_CONFIG", str(config))
        from obskit.tools import docker as docker_tool

        docker_tool.login(REGISTRY, user, password)
        assert REGISTRY in json.loads((config / "config.json").read_text())["auths"]
        pushed = push_images(plans, project.env_dir("prod"), REGISTRY,
                             exists=lambda plan: cloud.image_exists(REGION, plan.repository, plan.tag),
                             on_line=lines.append)
        built = {uri: docker("image", "inspect", "--format", "{{.Id}}", uri).stdout.strip() for uri in pushed}
        if left_out:
            print(f"\nleft out (base image not on this engine): {left_out}")
        yield {"plans": plans, "pushed": pushed, "built": built, "lines": lines, "project": project,
               "files": files, "exists": lambda plan: cloud.image_exists(REGION, plan.repository, plan.tag)}
    for plan in plans.values():  # the built images and the registry's manifests go
        uri = plan.uri(REGISTRY)
        repo = uri[len(REGISTRY) + 1:].rsplit(":", 1)[0]
        docker("rmi", "--force", uri, check=False)
        try:
            digest = _manifest(repo, plan.tag)[0]
        except requests.HTTPError:
            continue
        docker("rmi", "--force", f"{REGISTRY}/{repo}@{digest}", check=False)
        requests.delete(f"http://{REGISTRY}/v2/{repo}/manifests/{digest}", timeout=10)


def _manifest(repo: str, ref: str) -> tuple[str, dict]:
    answer = requests.get(f"http://{REGISTRY}/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFESTS}, timeout=10)
    answer.raise_for_status()
    return answer.headers["Docker-Content-Digest"], answer.json()


def _expected_files(plan) -> dict[str, bytes]:
    """Path in the image -> the rendered bytes the Dockerfile's COPY lines put there."""
    out = {}
    for src, dest in copies(plan.dockerfile):
        if src in plan.files:
            out[dest + src.rsplit("/", 1)[1] if dest.endswith("/") else dest] = plan.files[src]
        else:  # a folder: its files keep their paths under dest
            for path, data in plan.files.items():
                if path.startswith(src + "/"):
                    out[dest.rstrip("/") + "/" + path[len(src) + 1:]] = data
    return out


def _read(container: str, path: str) -> bytes:
    """A file out of a created (never started) container: works in images without a shell."""
    import subprocess

    tar = subprocess.run(["docker", "cp", f"{container}:{path}", "-"], capture_output=True, timeout=120)
    assert tar.returncode == 0, tar.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        member = t.next()
        while member is not None and not member.isfile():
            member = t.next()
        assert member is not None, f"{path}: no file in the archive"
        return t.extractfile(member).read()


def test_promote_pushes_every_image_to_the_registry_it_is_given(shipped):
    plans, pushed = shipped["plans"], shipped["pushed"]
    assert sorted(pushed) == sorted(p.uri(REGISTRY) for p in plans.values()), shipped["lines"]
    for uri in pushed:
        repo, tag = uri[len(REGISTRY) + 1:].rsplit(":", 1)
        digest, manifest = _manifest(repo, tag)
        # The registry holds the very image that was built: its config is the image's id.
        assert manifest["config"]["digest"] == shipped["built"][uri], uri


def test_the_pushed_bytes_are_the_bytes_that_run(shipped):
    """Each image pulled back by digest (its local tags removed first) is the built image,
    carries its content-hash label, and holds the rendered config files byte for byte."""
    for plan in shipped["plans"].values():
        uri = plan.uri(REGISTRY)
        repo = uri[len(REGISTRY) + 1:].rsplit(":", 1)[0]
        digest, _ = _manifest(repo, plan.tag)
        by_digest = f"{REGISTRY}/{repo}@{digest}"
        docker("rmi", uri)
        docker("pull", "-q", by_digest)
        inspected = json.loads(docker("image", "inspect", by_digest).stdout)[0]
        assert inspected["Id"] == shipped["built"][uri], plan.component
        assert by_digest in inspected["RepoDigests"]
        labels = inspected["Config"]["Labels"] or {}
        assert labels.get("org.opencontainers.image.title") == f"obskit-{plan.component}"
        assert labels.get("io.obskit.base", "").split("@")[1].startswith("sha256:")
        expected = _expected_files(plan)
        assert expected, plan.dockerfile
        name = f"obskit-test-{uuid.uuid4().hex[:10]}"
        docker("create", "--name", name, by_digest)
        try:
            for path, data in expected.items():
                assert _read(name, path) == data, f"{plan.component}: {path} differs from the rendered file"
        finally:
            docker("rm", "--force", name, check=False)
        docker("tag", by_digest, uri)  # back, for the next test and the clean-up


def test_an_image_already_in_ecr_is_not_built_again(shipped):
    """The step's other branch: an image whose tag the repository holds is skipped."""
    plan = shipped["plans"]["gateway"]
    lines: list[str] = []
    again = push_images({"gateway": plan}, shipped["project"].env_dir("prod"), REGISTRY,
                        exists=lambda p: True, on_line=lines.append)
    assert again == [] and lines == [f"{plan.uri(REGISTRY)} is already in ECR: not rebuilt"]
    # moto's ECR never saw the local push: promote's own lookup says it is not there yet.
    assert shipped["exists"](plan) is False
