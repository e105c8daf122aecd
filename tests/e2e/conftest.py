"""End-to-end tests need a Docker engine; without one they skip, saying why."""

from __future__ import annotations

import pytest

from obskit.testing import docker_available

from e2e.helpers import obskit, write_project


def pytest_collection_modifyitems(config, items):
    reason = docker_available()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"end-to-end tests need Docker: {reason}")
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture
def project_dir(tmp_path):
    """A project with a unique name and free ports; torn down (volumes too) whatever happens."""
    write_project(tmp_path)
    try:
        yield tmp_path
    finally:
        obskit(tmp_path, "down", "--volumes", check=False)
