"""Component images: the Dockerfiles every environment renders, and compose's image delivery.

Mounting the configs (compose's default) and baking them into the images (compose with
``config_delivery: image``, and ECS) must put the same bytes at the same paths, and compose's
image delivery must name the very tags `obskit promote` pushes."""

from __future__ import annotations

import json

from pathlib import Path, PurePosixPath

import pytest
import yaml

from obskit import loopback
from obskit.promote.ecs import tfvars
from obskit.images import DOCKERIGNORE, copies, image_plans, local_image
from obskit.render import component_hashes, render, write_environment
from obskit.secrets import compose_environment
from obskit.spec.load import load_spec

from conftest import REPO
from test_tools import needs_compose

FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"
IMAGE = "environments.local.config_delivery=image"
COMPONENT_SERVICES = {"loki": "loki", "mimir-1": "mimir", "mimir-2": "mimir", "mimir-3": "mimir",
                      "otelcol": "otelcol", "grafana": "grafana", "gateway": "gateway"}


def in_container(files: dict[str, bytes], pairs) -> dict[str, bytes]:
    """Container path -> bytes, for (source in the environment folder, container path) pairs;
    a folder source brings every rendered file under it."""
    out = {}
    for src, dest in pairs:
        src = src.rstrip("/")
        for rel, data in files.items():
            if rel == src:
                out[dest] = data
            elif rel.startswith(src + "/"):
                out[str(PurePosixPath(dest) / rel[len(src) + 1:])] = data
    return out


def compose_mounts(service: dict) -> list[tuple[str, str]]:
    pairs = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("../"):
            pairs.append((source[3:], target))
    return pairs


@pytest.fixture(scope="module")
def mounted():
    return render(load_spec(None, environ={}, use_default_file=False), "local")


def test_mounts_and_images_put_the_same_bytes_at_the_same_paths(mounted):
    services = yaml.safe_load(mounted["compose/docker-compose.yaml"])["services"]
    for service, component in COMPONENT_SERVICES.items():
        from_mounts = in_container(mounted, compose_mounts(services[service]))
        from_image = in_container(mounted, copies(mounted[f"images/{component}/Dockerfile"].decode()))
        assert from_mounts, service
        assert from_image == from_mounts, service
    # And every file of a component reaches its container.
    for component in set(COMPONENT_SERVICES.values()):
        dockerfile = mounted[f"images/{component}/Dockerfile"].decode()
        shipped = {rel for rel in mounted if rel.startswith(f"configs/{component}/")}
        reached = {rel for rel in shipped for src, _ in copies(dockerfile) if rel == src or rel.startswith(src + "/")}
        assert reached == shipped, component


def test_dockerfiles_build_from_the_pinned_image_and_only_the_configs(mounted):
    spec = load_spec(None, environ={}, use_default_file=False).spec
    assert mounted[".dockerignore"] == DOCKERIGNORE
    for component in set(COMPONENT_SERVICES.values()):
        text = mounted[f"images/{component}/Dockerfile"].decode()
        assert f"ARG BASE={getattr(spec.images, component)}\nFROM ${{BASE}}\n" in text
        hash_label = f'io.obskit.config-hash="{component_hashes(mounted)[component]}"'
        assert hash_label in text
        for src, dest in copies(text):
            # .dockerignore admits configs/ only: every source must live there.
            assert src.startswith(f"configs/{component}/") and PurePosixPath(dest).is_absolute(), (component, src)


def test_image_delivery_names_the_tags_promote_pushes():
    resolved = load_spec(FIXTURE, environ={}, sets=[IMAGE])
    local, prod = render(resolved, "local"), render(resolved, "prod")
    services = yaml.safe_load(local["compose/docker-compose.yaml"])["services"]
    plans = image_plans(resolved.spec, "prod", prod, component_hashes(prod))
    pushed = tfvars(resolved.spec, "prod", plans, component_hashes(prod), "123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    ecs_images = {svc["component"]: json.loads(svc["container_definitions"])[0]["image"]
                  for svc in pushed["services"].values()}
    for service, component in COMPONENT_SERVICES.items():
        # The content tag, unless `up --images` with a registry names the pushed digest.
        image = services[service]["image"]
        assert image == f"${{OBSKIT_IMAGE_{component.upper()}:-{local_image(resolved.spec, plans[component])}}}", service
        image = local_image(resolved.spec, plans[component])
        # Same content tag locally and in ECR: the same Dockerfile over the same bytes.
        assert image.rsplit(":", 1)[1] == ecs_images[component].rsplit(":", 1)[1], service
        assert services[service]["build"] == {"context": "..", "dockerfile": f"images/{component}/Dockerfile"}
        assert not compose_mounts(services[service]), service
    # The default (mount) delivery names the upstream images and builds nothing; and the
    # delivery changes only the compose file (and the stamp that hashes it), never a config
    # or a Dockerfile.
    mounted = render(load_spec(FIXTURE, environ={}), "local")
    default = yaml.safe_load(mounted["compose/docker-compose.yaml"])
    assert all("build" not in svc for svc in default["services"].values())
    assert {rel for rel in set(mounted) | set(local) if mounted.get(rel) != local.get(rel)} == \
        {"compose/docker-compose.yaml", "stamp.json"}


@needs_compose
def test_image_delivery_compose_file_validates_with_a_complete_build_context(tmp_path):
    resolved = load_spec(None, environ={}, use_default_file=False, sets=[IMAGE])
    dest = tmp_path / "env"
    write_environment(render(resolved, "local"), dest)
    plan = loopback.plan(resolved.spec, dest, tmp_path / "work")
    from obskit.tools import compose

    model = compose.validate(dest / "compose" / "docker-compose.yaml", compose_environment(resolved.spec, "local", plan.secrets))
    for name, svc in model["services"].items():
        assert all(v["type"] != "bind" for v in svc.get("volumes", [])), name  # nothing mounted from the host
        if name not in COMPONENT_SERVICES:
            assert "build" not in svc, name
            continue
        build = svc["build"]
        context = Path(build["context"])
        assert context.resolve() == dest.resolve(), name
        dockerfile = context / build["dockerfile"]
        for src, _ in copies(dockerfile.read_text()):
            assert (context / src).exists(), (name, src)
    # Registry images are pulled; component images are built, never pulled.
    # (what `up` asks pull_missing about: ComposeProject.images leaves out services with `build:`)
    secrets = compose_environment(resolved.spec, "local", plan.secrets)
    pulled = compose.ComposeProject(dest / "compose" / "docker-compose.yaml", "obskit-test", secrets).images()
    assert sorted(pulled) == ["create-buckets", "object-store", "postgres", "readiness"]


@pytest.mark.usefixtures("no_docker_engine")
def test_up_with_images_needs_an_engine_and_says_so(run_obskit, tmp_path):
    result = run_obskit("up", "--images", "--no-verify")
    assert result.returncode == 3, result.stderr
    assert "no Docker engine answers" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / ".obskit" / "env").exists()  # nothing rendered before the engine answered


def test_bad_delivery_is_one_clear_message(run_obskit):
    result = run_obskit("render", "--set", "environments.local.config_delivery=copy")
    assert result.returncode == 2
    assert "environments.local.config_delivery" in result.stderr and "'mount' or 'image'" in result.stderr


def test_check_names_a_dockerfile_that_copies_what_was_not_rendered(mounted):
    from obskit.checks import image_problems

    assert image_problems(mounted) == []
    broken = dict(mounted)
    del broken["configs/mimir/runtime.yaml"]
    broken["images/loki/Dockerfile"] = broken["images/loki/Dockerfile"].replace(b"FROM ${BASE}", b"FROM grafana/loki:latest")
    broken[".dockerignore"] = b"# nothing ignored\n"
    problems = image_problems(broken)
    assert "images/mimir/Dockerfile: COPY configs/mimir/runtime.yaml is not a rendered file or folder under configs/" in problems
    assert any(p.startswith("images/loki/Dockerfile: must start with ARG BASE") for p in problems)
    assert ".dockerignore must admit configs/ only" in problems
