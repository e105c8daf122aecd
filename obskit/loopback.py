"""Ports and plans for the stack's components as processes on 127.0.0.1.

The process runtime (``obskit.runtime.process``) and obskit's contract tests share this:
the same rendered config bytes as in compose and ECS, with the ``process`` binding table,
every server on 127.0.0.1 in one block of ports, data in a run folder.

Ports are chosen outside the kernel's ephemeral range (32768-60999): a port found free
there can be handed to any outgoing connection before the server binds it.
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import random
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from obskit import bindings
from obskit.secrets import SecretStore, resolve_env
from obskit.spec.model import EPHEMERAL_PORTS, PROCESS_PORT_BLOCK, ProcessEnvironment, Spec
from obskit.tools import nginx

# Where free ports are looked for: below the ephemeral range, above the well-known ones.
PORT_RANGE = range(20000, EPHEMERAL_PORTS.start)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``port`` (TCP and UDP). Connections of a stopped server
    lingering in TIME_WAIT do not count: servers bind with SO_REUSEADDR, and so does this."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # the collector's syslog is UDP
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port outside the ephemeral range."""
    return free_block(1)


def free_block(size: int = PROCESS_PORT_BLOCK, *, tries: int = 200) -> int:
    """The first port of ``size`` consecutive free loopback ports outside the ephemeral range."""
    rng = random.SystemRandom()
    for _ in range(tries):
        base = rng.randrange(PORT_RANGE.start, PORT_RANGE.stop - size)
        if all(port_free(p) for p in range(base, base + size)):
            return base
    raise OSError(f"no {size} consecutive free ports on 127.0.0.1 in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


def worker_user() -> str:
    """The ``user`` for nginx workers: the current user and its primary group."""
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
    except KeyError:
        return getpass.getuser()
    return f"{name} {group}"


def local_values(run_dir: Path) -> dict[str, str]:
    """What only this machine knows: the run folder, who runs the stack, what nginx parses."""
    return {
        "run_dir": str(Path(run_dir).resolve()),
        "user": worker_user(),
        "nginx_resolve": "resolve" if nginx.supports_upstream_resolve() else "",
        "hostname": socket.gethostname(),
    }


def copy_configs(rendered: Path, run_dir: Path) -> None:
    """The run folder's own copy of the rendered configs: what the processes read. A later
    render does not change a running stack's files under it."""
    dest = run_dir / "configs"
    tmp = run_dir / ".configs.new"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(rendered / "configs", tmp)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


@dataclass
class Loopback:
    """A planned process stack: ports, resolved environments, paths."""

    spec: Spec
    rendered: Path  # the rendered environment folder (holds configs/)
    workdir: Path  # the run folder
    ports: dict[str, dict[str, int]]
    env: dict[str, dict[str, str]]  # service -> resolved environment
    secrets: dict[str, str]

    def config(self, component: str, name: str) -> Path:
        return self.workdir / "configs" / component / name

    def url(self, service: str, port: str = "http", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[service][port]}"


def plan(
    spec: Spec,
    rendered: Path,
    workdir: Path,
    *,
    s3_endpoint: str | None = None,
    s3_access_key: str | None = None,
    s3_secret_key: str | None = None,
    env_name: str = "local",
    base_port: int | None = None,
) -> Loopback:
    """Plan a process stack from a rendered environment, on a free block of ports.

    Secrets are generated into ``workdir`` (never the user's store). ``s3_*`` point Loki and
    Mimir at an S3 API that is already running (a moto server in obskit's tests).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env = ProcessEnvironment(kind="process", base_port=base_port or free_block())
    table = bindings._process(spec, env)
    values, _ = SecretStore(workdir / "state", env_name).ensure(spec)
    values = dict(values)
    # What the process table needs beyond env_name's own catalogue (an AWS environment has
    # no object-store keys: its tasks use their role), generated for this throwaway plan.
    from obskit.secrets import generate_password, is_derived

    for svc in table.values():
        for binding in svc.env.values():
            if isinstance(binding, bindings.Secret) and not binding.ref and not is_derived(binding.name):
                values.setdefault(binding.name, generate_password())
    if s3_access_key is not None:
        values["object-store-access-key"] = s3_access_key
    if s3_secret_key is not None:
        values["object-store-secret-key"] = s3_secret_key
    local = local_values(workdir)
    resolved = {name: resolve_env(svc, values, local=local) for name, svc in table.items()}
    if s3_endpoint is not None:
        for svc_env in resolved.values():
            if "S3_ENDPOINT" in svc_env:
                svc_env["S3_ENDPOINT"] = s3_endpoint
    if (rendered / "configs").is_dir():
        copy_configs(rendered, workdir)
    for name in table:
        (workdir / "data" / name).mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    return Loopback(spec, rendered, workdir, bindings.process_ports(spec, env.base_port), resolved, values)


def endpoints(loop: Loopback, ca_file: str):
    """Verify endpoints of a process stack (the gateway on its loopback port)."""
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
