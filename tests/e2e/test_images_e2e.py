"""Component images with Docker: built the way `obskit promote` builds them (FROM the pinned
image by digest, the rendered environment as the context), they carry the rendered bytes
at the paths compose mounts them; and a stack started from them passes `verify`."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import pytest

from obskit.project import Project
from obskit.images import copies
from obskit.render import component_hashes, render
from obskit.spec.load import load_spec
from obskit.stack import build_images, ensure_rendered

from e2e.helpers import obskit
from test_images import COMPONENT_SERVICES, in_container

pytestmark = pytest.mark.docker


def test_images_carry_the_rendered_bytes(project_dir, tmp_path):
    from python_on_whales import DockerClient

    resolved = load_spec(project_dir / "obskit.yaml", environ={}, sets=["environments.local.config_delivery=image"])
    project = Project.of(resolved, root=project_dir)
    built = build_images(project, "local", ensure_rendered(project, "local").files)
    assert set(built) == set(COMPONENT_SERVICES.values())
    files = render(resolved, "local")
    docker = DockerClient()
    for component, tag in built.items():
        labels = docker.image.inspect(tag).config.labels
        assert labels["io.obskit.config-hash"] == component_hashes(files)[component]
        assert "@sha256:" in labels["io.obskit.base"]  # FROM the upstream image by digest
        expected = in_container(files, copies(files[f"images/{component}/Dockerfile"].decode()))
        container = docker.container.create(tag)
        try:
            for path, data in expected.items():
                out = tmp_path / component / PurePosixPath(path).relative_to("/")
                out.parent.mkdir(parents=True, exist_ok=True)
                docker.copy((container, path), out)
                assert out.read_bytes() == data, (component, path)
        finally:
            container.remove(force=True)


def test_a_stack_from_the_images_passes_verify_and_a_second_up_recreates_nothing(project_dir):
    from e2e.test_stack_e2e import container_ids

    up = json.loads(obskit(project_dir, "up", "--images", "--json").stdout)
    assert set(up["images"]) == set(COMPONENT_SERVICES.values())
    assert up["verify"] and all(o["ok"] for o in up["verify"]), up["verify"]
    before = container_ids(project_dir)
    obskit(project_dir, "up", "--images", "--no-verify")  # images found by their content tags
    assert container_ids(project_dir) == before


def test_images_pushed_to_a_registry_run_by_digest(project_dir):
    """`up --images` with a registry: obskit's images go to the registry under the
    repository names ECR gets, and the stack runs them by registry digest, as ECS does."""
    import os
    import subprocess

    registry = os.environ.get("OBSKIT_ENGINE_REGISTRY")
    if not registry:
        pytest.skip("needs a registry to push to (OBSKIT_ENGINE_REGISTRY: `.ci/engine env` sets it)")
    spec = project_dir / "obskit.yaml"
    spec.write_text(spec.read_text() + f"    registry: {registry!r}\n")
    up = json.loads(obskit(project_dir, "up", "--images", "--json").stdout)
    assert up["verify"] and all(o["ok"] for o in up["verify"]), up["verify"]
    project = Project.of(load_spec(spec, environ={}))
    for component, ref in up["images"].items():
        assert ref.startswith(f"{registry}/{project.spec.project}-local/{component}@sha256:"), ref
    ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project.project_name('local')}"],
                         capture_output=True, text=True, check=True).stdout.split()
    running = subprocess.run(["docker", "inspect", "--format", "{{.Config.Image}}", *ids],
                             capture_output=True, text=True, check=True).stdout.split()
    for ref in up["images"].values():
        assert ref in running, (ref, running)
