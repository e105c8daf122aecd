"""Run the stack's components as processes on 127.0.0.1 (no Docker).

The same rendered config bytes as in compose and ECS, with the ``loopback`` binding
table: every server on 127.0.0.1 on a free port, data in a work directory, S3 on any
loopback S3 API (a moto server in obskit's tests). Used by ``obskit check`` and by the
binary contract tests; anyone with the component binaries can use it too.
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import socket
from dataclasses import dataclass
from pathlib import Path

from obskit import bindings
from obskit.secrets import SecretStore
from obskit.spec.model import Spec
from obskit.tools import nginx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(spec: Spec) -> dict[str, dict[str, int]]:
    """A free loopback port for every port of every service (same names as compose)."""
    ports: dict[str, dict[str, int]] = {}
    for service in ["loki", "otelcol", "grafana", "gateway", *spec.mimir_replicas]:
        kind = "mimir" if service.startswith("mimir-") else service
        ports[service] = {name: free_port() for name in bindings.PORTS[kind]}
    return ports


def worker_user() -> str:
    """The ``user`` for nginx workers: the current user and its primary group."""
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
    except KeyError:
        return getpass.getuser()
    return f"{name} {group}"


@dataclass
class Loopback:
    """A planned loopback stack: ports, resolved environments, paths."""

    spec: Spec
    rendered: Path  # the rendered environment folder (holds configs/)
    workdir: Path
    ports: dict[str, dict[str, int]]
    env: dict[str, dict[str, str]]  # service -> resolved environment
    secrets: dict[str, str]

    def config(self, component: str, name: str) -> Path:
        return self.rendered / "configs" / component / name

    def url(self, service: str, port: str = "http", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[service][port]}"


def plan(
    spec: Spec,
    rendered: Path,
    workdir: Path,
    *,
    s3_endpoint: str = "127.0.0.1:9",
    s3_access_key: str = "obskit",
    s3_secret_key: str = "obskit-secret",
    env_name: str = "local",
    ports: dict[str, dict[str, int]] | None = None,
) -> Loopback:
    """Plan a loopback stack. Secrets are generated into ``workdir`` (never the user's store)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ports = ports or free_ports(spec)
    values, _ = SecretStore(workdir / "state", env_name).ensure(spec)
    table = bindings.loopback(
        spec,
        ports=ports,
        workdir=str(workdir),
        config_dir=str(rendered / "configs"),
        s3_endpoint=s3_endpoint,
        s3_access_key=s3_access_key,
        s3_secret_key=s3_secret_key,
        gateway_user=worker_user(),
        upstream_resolve=nginx.supports_upstream_resolve(),
    )
    env = {name: bindings.resolve_env(svc, values) for name, svc in table.items()}
    for name in table:
        Path(workdir, name, "data").mkdir(parents=True, exist_ok=True)
    return Loopback(spec, rendered, workdir, ports, env, values)


def endpoints(loop: Loopback, ca_file: str):
    """Verify endpoints of a loopback stack (the gateway on its loopback port)."""
    from obskit.bindings import tenant_names
    from obskit.secrets import gateway_users
    from obskit.verify import Endpoints, provisioned_alerting, provisioned_uids

    ds, dash = provisioned_uids(loop.rendered / "configs")
    rules, contacts = provisioned_alerting(loop.rendered / "configs")
    base = f"https://localhost:{loop.ports['gateway']['https']}"
    return Endpoints(
        gateway=base,
        grafana=f"{base}{loop.spec.grafana.sub_path}",
        ca_file=ca_file,
        passwords={user: loop.secrets[s.name] for user, s in gateway_users(loop.spec).items()},
        grafana_admin=(loop.spec.grafana.admin_user, loop.secrets.get("grafana-admin-password", "")),
        tenants=tenant_names(loop.spec),
        datasource_uids=ds,
        dashboard_uids=dash,
        rule_uids=rules,
        contact_points=contacts,
        metric_suffixes=loop.spec.mimir.otel_metric_suffixes,
    )
