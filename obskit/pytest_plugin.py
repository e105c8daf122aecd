"""pytest plugin (entry point ``pytest11``): the ``obskit_stack`` fixture.

    def test_my_app_logs(obskit_stack):
        exporter = OTLPLogExporter(**obskit_stack.otlp_exporter_config("logs"))
        ...
        assert obskit_stack.query_logs('{service_name="my-app"}')

The stack starts once per session and is always torn down. Without a Docker engine the
fixture skips, saying why. Options: ``--obskit-spec FILE``, ``--obskit-set KEY=VALUE``.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("obskit")
    group.addoption("--obskit-spec", default=None, help="obskit spec for the obskit_stack fixture (default: ./obskit.yaml or the embedded default)")
    group.addoption("--obskit-set", action="append", default=[], metavar="KEY=VALUE", help="override a spec value for the obskit_stack fixture")


@pytest.fixture(scope="session")
def obskit_stack(request):
    """A running obskit stack (endpoints, credentials, query helpers), torn down at the end."""
    from obskit.testing import NoDocker, start_stack

    try:
        stack = start_stack(request.config.getoption("--obskit-spec"), sets=request.config.getoption("--obskit-set"))
    except NoDocker as exc:
        pytest.skip(f"obskit_stack needs Docker: {exc}")
    request.addfinalizer(stack.close)
    return stack
