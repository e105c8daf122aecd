"""An image gets the same environment contract wherever it runs: what compose gives an
image, the ECS container definition gives it too (the gateway that never started on ECS
lacked NGINX_ENVSUBST_*), no ECS value is empty (ECS drops them, so every plan would
differ), and folders an image writes at start exist in both."""

from __future__ import annotations

import json

import pytest
import yaml

from obskit.components import components
from obskit.images import image_plans
from obskit.promote.ecs import container_definitions, images, scratch_volume
from obskit.render import component_hashes, render
from obskit.spec.load import load_spec
from obskit.tools.docker import digest_for

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"


@pytest.fixture(scope="module")
def both():
    resolved = load_spec(FIXTURE, environ={})
    files = render(resolved, "prod")
    plans = image_plans(resolved.spec, "prod", files, component_hashes(files))
    defs = container_definitions(resolved.spec, "prod", images(plans, "registry.example"))
    compose = yaml.safe_load(render(resolved, "local")["compose/docker-compose.yaml"])["services"]
    return resolved.spec, defs, compose


def _ecs_names(container: dict) -> dict[str, str | None]:
    out: dict[str, str | None] = {e["name"]: e["value"] for e in container.get("environment", [])}
    out |= {s["name"]: None for s in container.get("secrets", [])}  # a secret: value from SSM
    return out


def test_every_variable_compose_gives_an_image_reaches_its_ecs_container(both):
    """The names compose sets for a service's image, the ECS container of the same service
    sets too, unless AWS's binding table says on purpose that it has no value there (S3
    keys: the task role; an instance address: the task's own). Unset and empty read alike."""
    from obskit import bindings

    spec, defs, compose = both
    aws = bindings.services(spec, "prod")
    checked = 0
    for name, containers in defs.items():
        ecs = _ecs_names(containers[0])
        unbound_on_aws = {var for var, value in aws[name].env.items() if value == ""}
        for var, value in (compose[name].get("environment") or {}).items():
            if value == "" or var in unbound_on_aws:
                continue
            assert var in ecs, f"{name}: compose gives its image {var}, the ECS container definition does not"
            checked += 1
    assert checked > 50


def test_the_gateway_container_carries_the_nginx_image_contract(both):
    _spec, defs, compose = both
    gateway = defs["gateway"][0]
    env = {e["name"]: e["value"] for e in gateway["environment"]}
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx/obskit"
    assert env["NGINX_ENVSUBST_FILTER"] == "^OBSKIT_"
    assert compose["gateway"]["environment"]["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx/obskit"
    # nginx is told to read what the entrypoint renders into that folder.
    assert gateway["command"][:3] == ["nginx", "-c", "/etc/nginx/obskit/nginx.conf"]


def test_scratch_folders_exist_in_both(both):
    """The image renders into folders it does not create: compose mounts a tmpfs there,
    ECS a task storage volume."""
    spec, defs, compose = both
    for name, comp in components(spec.grafana.sub_path).items():
        if not comp.scratch_dirs:
            continue
        tmpfs = [t.split(":")[0] for t in compose[name].get("tmpfs", [])]
        mounts = {m["containerPath"]: m["sourceVolume"] for m in defs[name][0].get("mountPoints", [])}
        for folder in comp.scratch_dirs:
            assert folder in tmpfs, f"{name}: compose has no tmpfs at {folder}"
            assert mounts.get(folder) == scratch_volume(folder), f"{name}: ECS has no volume at {folder}"


def test_no_ecs_environment_value_is_empty(both):
    """ECS drops empty values and the AWS provider does not normalise them, so an empty one
    makes container_definitions differ on every plan (and replaces the task definition)."""
    _spec, defs, _compose = both
    empty = [(name, c["name"], e["name"]) for name, cs in defs.items() for c in cs
             for e in c.get("environment", []) if e["value"] == ""]
    assert not empty, f"empty environment values: {empty}"


def test_terraform_declares_a_volume_for_every_mount_point():
    text = (REPO / "terraform" / "modules" / "ecs" / "main.tf").read_text()
    assert text.count('dynamic "volume"') >= 2  # both task definition resources
    assert "m.sourceVolume" in text


# --------------------------------------------------------------------------- digests


@pytest.mark.parametrize("image, digests, want", [
    # Another registry's copy of the same image never pins it.
    ("grafana/loki:3.7.6", ["127.0.0.1/grafana/loki@sha256:aa", "grafana/loki@sha256:bb"], "grafana/loki@sha256:bb"),
    ("grafana/loki:3.7.6", ["127.0.0.1:5000/grafana/loki@sha256:aa"], None),
    ("grafana/loki:3.7.6", ["other/loki@sha256:aa"], None),
    ("nginx:1.30.5", ["nginx@sha256:cc"], "nginx@sha256:cc"),
    ("docker.io/library/nginx:1.30.5", ["nginx@sha256:cc"], "nginx@sha256:cc"),
    ("quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z", ["quay.io/minio/minio@sha256:dd", "minio/minio@sha256:ee"],
     "quay.io/minio/minio@sha256:dd"),
    ("127.0.0.1:5000/obskit/gateway:cfg-1", ["127.0.0.1:5000/obskit/gateway@sha256:ff"], "127.0.0.1:5000/obskit/gateway@sha256:ff"),
])
def test_pinned_takes_only_its_own_repository(image, digests, want):
    assert digest_for(image, digests) == want
