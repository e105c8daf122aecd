"""pytest plugin (entry point ``pytest11``): the ``obskit_stack`` fixture.

    def test_my_app_logs(obskit_stack):
        exporter = OTLPLogExporter(**obskit_stack.otlp_exporter_config("logs"))
        ...
        assert obskit_stack.query_logs('{service_name="my-app"}')

The stack starts once per session and is always torn down. Without a Docker engine the
fixture skips, saying why. Options: ``--obskit-spec FILE``, ``--obskit-set KEY=VALUE``,
``--obskit-runtime process`` (no Docker: the components as processes on 127.0.0.1; skips
when a program is missing, and runs without Grafana where Grafana is not installed).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("obskit")
    group.addoption("--obskit-spec", default=None, help="obskit spec for the obskit_stack fixture (default: ./obskit.yaml or the embedded default)")
    group.addoption("--obskit-set", action="append", default=[], metavar="KEY=VALUE", help="override a spec value for the obskit_stack fixture")
    group.addoption("--obskit-runtime", default="compose", choices=["compose", "process"],
                    help="how the obskit_stack fixture runs the stack: compose (Docker) or process (programs on PATH, no Docker)")


@pytest.fixture(scope="session")
def obskit_stack(request):
    """A running obskit stack (endpoints, credentials, query helpers), torn down at the end."""
    from obskit.testing import NoBinaries, NoDocker, start_stack

    runtime = request.config.getoption("--obskit-runtime")
    try:
        stack = start_stack(request.config.getoption("--obskit-spec"), sets=request.config.getoption("--obskit-set"),
                            runtime=runtime)
    except NoDocker as exc:
        pytest.skip(f"obskit_stack needs Docker (or --obskit-runtime process): {exc}")
    except NoBinaries as exc:
        pytest.skip(f"obskit_stack (process runtime) is missing programs: {exc}")
    request.addfinalizer(stack.close)
    return stack
