"""End-to-end tests need a Docker engine and the images the stack pins; without either
they skip, saying why (`.ci/engine up` gives both on a machine without Docker)."""

from __future__ import annotations

import subprocess

import pytest

from obskit.testing import docker_available

from e2e.helpers import obskit, write_project


def missing_images() -> list[str]:
    """Pinned images of the default stack that are neither here nor pullable."""
    from obskit.spec.model import Images
    from obskit.tools.compose import image_present

    # Every pin the default stack runs (MinIO is only an option).
    wanted = [image for key, image in Images().model_dump().items() if key != "minio"]
    missing = []
    for image in wanted:
        if image_present(image):
            continue
        pulled = subprocess.run(["docker", "pull", "-q", image], capture_output=True, text=True, timeout=600)
        if pulled.returncode != 0:
            missing.append(image)
    return missing


def pytest_collection_modifyitems(config, items):
    e2e = [item for item in items if "/e2e/" in str(item.fspath)]
    if not e2e:
        return
    reason = docker_available()
    if reason is None:
        absent = missing_images()
        if absent:
            reason = (f"{', '.join(absent)} not on this engine and cannot be pulled "
                      "(.ci/engine builds stand-ins from the loki, mimir and grafana programs on PATH)")
    else:
        reason = f"end-to-end tests need Docker: {reason}"
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in e2e:
        item.add_marker(skip)


@pytest.fixture
def project_dir(tmp_path):
    """A project with a unique name and free ports; torn down (volumes too) whatever happens."""
    write_project(tmp_path)
    try:
        yield tmp_path
    finally:
        obskit(tmp_path, "down", "--volumes", check=False)
