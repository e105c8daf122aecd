"""End-to-end tests need a Docker engine; without one they skip, saying why."""

from __future__ import annotations

import pytest

from obskit.testing import docker_available


def pytest_collection_modifyitems(config, items):
    reason = docker_available()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"end-to-end tests need Docker: {reason}")
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(skip)
