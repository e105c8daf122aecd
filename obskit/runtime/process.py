"""The process runtime: the stack as supervised processes on 127.0.0.1, no Docker.

The same rendered config bytes as compose and ECS, with the ``process`` binding table.
Every server runs in its own session (process group) with its output in
``.obskit/run/<env>/logs/<service>.log``; ``state.json`` beside it records each PID, the
program and a fingerprint of what it was started with. ``up`` starts in waves (object
store and database; Loki and the Mimir replicas; the gateway; the collector and
Grafana), each gated on readiness probes made from the host, and stops everything it
started when a start fails, on Ctrl-C, or on SIGTERM. ``down`` stops by PID in the
reverse order, waiting each component's stop timeout before it kills. Data lives in
``data/`` there and survives ``down``; ``down --volumes`` deletes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import requests

from obskit import bindings, loopback
from obskit.components import Component, Probe, component_of, components
from obskit.errors import ObskitError, UsageError
from obskit.spec.model import ProcessEnvironment, Spec
from obskit.secrets import resolve_env
from obskit.tools.compose import ServiceState

LOG_LINES_ON_FAILURE = 30
STATE_FILE = "state.json"


class MissingBinaries(ObskitError):
    """Programs the process runtime needs are not installed."""

    exit_code = 3


class StartFailed(ObskitError):
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, failing: list[str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failing = failing or []


class PortTaken(ObskitError):
    exit_code = 2


# --------------------------------------------------------------------------- programs


@dataclass(frozen=True)
class Program:
    """One program a service runs, found on this machine."""

    path: str
    extra: dict = field(default_factory=dict)  # e.g. postgres's bin folder, grafana's home


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name  # console scripts of obskit's own venv
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def _explicit(path: str | None, what: str, missing: list[str], key: str) -> str | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if p.is_file() and os.access(p, os.X_OK):
        return str(p)
    missing.append(f"{what}: {path} (set by {key}) is not an executable file")
    return ""


def find_programs(spec: Spec, env_name: str, env: ProcessEnvironment, services: list[str]) -> dict[str, Program]:
    """The program of every service, or MissingBinaries naming each missing one (one line each)."""
    comps = components(spec.grafana.sub_path)
    key = f"environments.{env_name}.binaries"
    missing: list[str] = []
    installable: list[str] = []  # names `obskit programs install` knows, of what is missing
    absent: list[str] = []  # the components missing
    found: dict[str, Program] = {}
    kinds = list(dict.fromkeys(component_of(s) for s in services))
    for kind in kinds:
        service = kind
        if kind in comps:
            comp = comps[kind]
            field_name = "otelcol" if kind == "otelcol" else {"gateway": "nginx"}.get(kind, kind)
            explicit = _explicit(getattr(env.binaries, field_name), comp.binaries[0], missing, f"{key}.{field_name}")
            path = explicit if explicit is not None else (next(filter(None, map(_which, comp.binaries)), None)
                                                          or _installed(*_RELEASE_OF.get(kind, ())))
            if path is None:
                where = "not on PATH or in obskit's program cache" if kind in _RELEASE_OF else "not on PATH"
                missing.append(f"{' or '.join(comp.binaries)}: {where}; " + comp.install_hint.replace("<env>", env_name))
                installable += _RELEASE_OF.get(kind, ())
                absent.append(kind)
                continue
            if not path:
                continue
            extra = {}
            if kind == "grafana":
                home = env.binaries.grafana_home or _grafana_home(path)
                if home is None:
                    missing.append(f"grafana home (conf/defaults.ini): not found beside {path}; set {key}.grafana_home")
                    continue
                extra["home"] = home
            found[kind] = Program(path, extra)
        elif kind == "postgres":
            bindir = _postgres_bin(env.binaries.postgres_bin)
            if bindir is None:
                missing.append(
                    "postgres, initdb: not found (PATH, /usr/lib/postgresql/*/bin); Debian: apt-get install "
                    f"postgresql; or set {key}.postgres_bin, or environments.{env_name}.database.mode: external"
                )
                absent.append(kind)
                continue
            found[service] = Program(str(bindir / "postgres"), {"bin": str(bindir)})
        elif kind == "object-store":
            # versitygw keeps objects on disk (data survives down/up); moto keeps them in memory.
            # A program set in the spec wins ("" when it is set but unusable: already named).
            flavours = ("versitygw", "moto_server")
            path, flavour = None, None
            for flavour in flavours:
                path = _explicit(getattr(env.binaries, flavour), flavour, missing, f"{key}.{flavour}")
                if path is not None:
                    break
            else:
                # versitygw on PATH, then the one `obskit programs install` put in the cache, then moto.
                for flavour, look in (("versitygw", _which), ("versitygw", _installed), ("moto_server", _which)):
                    path = look(flavour)
                    if path:
                        break
            if path is None:
                missing.append(
                    "versitygw or moto_server: not on PATH or in obskit's program cache (the local S3 API); "
                    "`GOBIN=DIR go install github.com/versity/versitygw/cmd/versitygw@v1.8.0` (on disk) or pip "
                    "install 'moto[server]' (in memory), or point object_store at an S3 API (provider: external, "
                    "endpoint: host:port)"
                )
                installable.append("versitygw")
                absent.append(kind)
                continue
            if path:
                found[service] = Program(path, {"flavour": flavour})
    found = {s: found[component_of(s)] for s in services if component_of(s) in found}
    if missing:
        raise _missing(missing, installable, absent, env_name, env)
    return found


# The component whose program `obskit programs install NAME` provides (obskit/releases.yaml).
_RELEASE_OF = {"loki": ("loki",), "mimir": ("mimir",), "grafana": ("grafana",), "otelcol": ("otelcol-contrib",)}


def _installed(*names: str) -> str | None:
    """A program `obskit programs install` put in the per-user cache (searched after PATH)."""
    from obskit.programs import installed_program

    return installed_program(*names) if names else None


def _missing(missing: list[str], installable: list[str], absent: list[str], env_name: str,
             env: ProcessEnvironment) -> MissingBinaries:
    """One line per missing program, `obskit programs install ...` first where it helps, and a
    hint worded for one program or several and for Grafana left out or not."""
    one = len(missing) == 1
    lines = list(missing)
    if installable:
        names = list(dict.fromkeys(installable))
        from obskit.programs import cache_dir

        lines.insert(0, f"`obskit programs install {' '.join(names)}` downloads {'it' if len(names) == 1 else 'them'} "
                        f"(pinned releases, checked against their published checksums, into {cache_dir()})")
    # What leaving a component out would spare: Grafana (and its Postgres), Mimir.
    spare = [c for c in ("grafana", "mimir") if c in absent or (c == "grafana" and "postgres" in absent)]
    todo = f"run `obskit programs install {' '.join(dict.fromkeys(installable))}`" if installable else \
        f"install {'it' if one else 'them'}"
    hint = todo
    if spare:
        label = " and ".join(c.capitalize() for c in spare)
        hint += f", or run without {label}: environments.{env_name}.skip: [{', '.join(env.skip + spare)}]"
    if "grafana" in env.skip:
        hint += " (Grafana is left out here: neither it nor its Postgres is needed)"
    head = "the process runtime is missing " + ("a program" if one else f"{len(missing)} programs")
    return MissingBinaries(head + ":\n" + "\n".join("  " + line for line in lines), hint=hint)


def _grafana_home(binary: str) -> str | None:
    exe = Path(binary).resolve()
    for candidate in (exe.parent.parent, exe.parent, exe.parent.parent / "share" / "grafana", Path("/usr/share/grafana")):
        if (candidate / "conf" / "defaults.ini").is_file():
            return str(candidate)
    return None


def _postgres_bin(configured: str | None) -> Path | None:
    candidates = [Path(configured).expanduser()] if configured else []
    if not configured:
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent.name), reverse=True)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "postgres").is_file():
            return c
    return None


def _version_key(text: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in text.split("."))


# --------------------------------------------------------------------------- plan


@dataclass
class ServicePlan:
    name: str
    kind: str  # the component (mimir for mimir-2), or postgres / object-store
    wave: int
    argv: list[str]
    env: dict[str, str]
    probes: list[tuple[str, dict, tuple[int, ...]]]  # (url, headers, accepted statuses)
    stop_timeout: int
    start_timeout: int
    stop_signal: int = signal.SIGTERM
    user: int | None = None  # run as this uid (postgres refuses root)
    group: int | None = None
    config_hash: str = ""  # of its component's config files: a changed file restarts it

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps([self.argv, sorted(self.env.items()), self.config_hash]).encode())
        return h.hexdigest()[:16]


WAVES = {"object-store": 0, "postgres": 0, "loki": 1, "mimir": 1, "gateway": 2, "otelcol": 3, "grafana": 3}


@dataclass
class Running:
    pid: int
    program: str
    fingerprint: str
    started: float
    ticks: int = 0  # the kernel's start time of the process: a reused PID has another
    ready_after: float | None = None  # seconds from start until every readiness probe passed
    group: int = 0  # the process group signalled on stop (the supervisor's); 0: pid's own
    exit_file: str = ""  # where the supervisor writes how the program ended

    def alive(self) -> bool:
        return _alive(self.pid, self.ticks)

    def ended(self) -> tuple[str, int | None]:
        """How a program that is no longer running ended: ("exited", code), ("killed",
        signal) or ("exited", None) when nobody recorded it."""
        try:
            lines = Path(self.exit_file).read_text().split("\n") if self.exit_file else []
        except OSError:
            lines = []
        for line in lines:
            kind, _, value = line.partition(" ")
            if kind == "exit" and value.isdigit():
                return "exited", int(value)
            if kind == "signal" and value.isdigit():
                return "killed", int(value)
        return "exited", None


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22),
    or None when there is no such process or it is a zombie (reaped here if it is ours)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    if fields[0] == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return None
    return int(fields[19])


def _alive(pid: int, ticks: int) -> bool:
    """Whether ``pid`` is still the process that was started (not exited, not a reused PID)."""
    now = _start_ticks(pid)
    return now is not None and (not ticks or now == ticks)


class ProcessRuntime:
    """The process runtime of one environment of a project."""

    kind = "process"

    def __init__(self, project, env_name: str) -> None:
        env = project.resolved.environment(env_name)
        if not isinstance(env, ProcessEnvironment):
            raise UsageError(f"environment '{env_name}' is {env.kind}, not a process environment")
        self.project = project
        self.spec: Spec = project.spec
        self.env_name = env_name
        self.env = env
        self.run_dir: Path = project.state_dir / "run" / env_name
        self.spec_base_port = self.base_port = env.base_port
        self.last_up: dict[str, list[str]] = {}
        self.ports = bindings.process_ports(self.spec, self.base_port)

    def follow_running(self) -> str | None:
        """Use the ports of the stack as it runs: its state holds the base_port `up` used,
        which a one-off --set may have moved. For the commands that talk to a running stack
        (status, logs, verify, load); None, or the sentence that says it moved."""
        port = self._running_base_port()
        if port and port != self.base_port:
            self.base_port = port
            self.ports = bindings.process_ports(self.spec, port)
        return self.moved_note()

    # ------------------------------------------------------------------ layout
    @property
    def services(self) -> list[str]:
        """Every service this environment runs, in start order."""
        table = bindings.services(self.spec, self.env_name)
        # Postgres holds only Grafana's database: without Grafana it does not start either.
        skip = set(self.env.skip) | ({"postgres"} if "grafana" in self.env.skip else set())
        names = [n for n in table if component_of(n) not in skip]
        return sorted(names, key=lambda n: (WAVES[component_of(n)], n))

    def log_path(self, service: str) -> Path:
        return self.run_dir / "logs" / f"{service}.log"

    def _running_base_port(self) -> int | None:
        try:
            raw = json.loads((self.run_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        port = raw.get("base_port")
        running = any(Running(**v).alive() for v in raw.get("services", {}).values())
        return port if running and isinstance(port, int) else None

    def moved_note(self) -> str | None:
        """A sentence when the running stack is not on the spec's ports."""
        if self.base_port == self.spec_base_port:
            return None
        return (f"the '{self.env_name}' stack runs on base_port {self.base_port} (as its last `obskit up` was told), "
                f"not the spec's {self.spec_base_port}: using its ports; put `base_port: {self.base_port}` under "
                f"environments.{self.env_name} in obskit.yaml to make it the default")

    def _read_state(self) -> dict[str, Running]:
        try:
            raw = json.loads((self.run_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {k: Running(**v) for k, v in raw.get("services", {}).items()}

    def _write_state(self, state: dict[str, Running]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps({"environment": self.env_name, "base_port": self.base_port,
                                   "services": {k: v.__dict__ for k, v in sorted(state.items())}}, indent=2))
        os.replace(tmp, self.run_dir / STATE_FILE)

    # ------------------------------------------------------------------ plan
    def plan(self, values: dict[str, str]) -> list[ServicePlan]:
        services = self.services
        programs = find_programs(self.spec, self.env_name, self.env, services)
        table = bindings.services(self.spec, self.env_name)
        local = loopback.local_values(self.run_dir)
        comps = components(self.spec.grafana.sub_path)
        configs = self.run_dir / "configs"
        ops = self.spec.operators.tenant
        plans = []
        hashes = {c: _tree_hash(configs / c) for c in comps}
        for name in services:
            kind = component_of(name)
            env = resolve_env(table[name], values, local=local)
            prog = programs[name]
            if kind in comps:
                comp = comps[kind]
                argv = [prog.path, *_host_args(comp, configs)]
                if kind == "gateway":
                    argv = [prog.path, "-c", str(self.run_dir / "gateway" / "conf" / "nginx.conf"),
                            "-e", str(self.log_path("gateway")), "-g", "daemon off;"]
                elif kind == "grafana":
                    # Through the same wrapper the image runs (the gateway's CA added to
                    # what Grafana trusts), in place of the image's /run.sh.
                    argv = ["/bin/sh", str(configs / "grafana" / "obskit-entrypoint.sh"),
                            prog.path, "server", "--homepath", prog.extra["home"],
                            "--config", str(configs / "grafana" / "grafana.ini")]
                probes = [_probe_url(p, self.ports[name], ops) for p in comp.probes]
                plans.append(ServicePlan(name, kind, WAVES[kind], argv, env, probes, comp.stop_timeout, comp.start_timeout,
                                         signal.SIGQUIT if kind == "gateway" else signal.SIGTERM))
            elif kind == "postgres":
                port = self.ports["postgres"]["postgres"]
                argv = [prog.path, "-D", env["PGDATA"], "-p", str(port), "-h", "127.0.0.1",
                        "-k", str(self.run_dir / "postgres-socket"), "-c", "logging_collector=off"]
                uid, gid = _postgres_user()
                # SIGINT: postgres's fast shutdown (SIGTERM waits for every client to leave).
                plans.append(ServicePlan(name, kind, 0, argv, env, [(f"tcp://127.0.0.1:{port}", {}, ())], 60, 60,
                                         signal.SIGINT, uid, gid))
            else:  # the local S3 API
                port = self.ports["object-store"]["s3"]
                if prog.extra.get("flavour") == "versitygw":
                    data = env["S3_DATA_DIR"]
                    argv = [prog.path, "--health", "/obskit-health", "posix", "--sidecar", f"{data}/meta", f"{data}/objects"]
                    env = {**env, "VGW_PORT": f"127.0.0.1:{port}", "ROOT_ACCESS_KEY_ID": env["S3_ACCESS_KEY_ID"],
                           "ROOT_SECRET_ACCESS_KEY": env["S3_SECRET_ACCESS_KEY"]}
                    probe = f"http://127.0.0.1:{port}/obskit-health"
                else:
                    argv = [prog.path, "-H", "127.0.0.1", "-p", str(port)]
                    probe = f"http://127.0.0.1:{port}/moto-api/"
                plans.append(ServicePlan(name, kind, 0, argv, env, [(probe, {}, (200,))], 30, 60))
        for p in plans:
            p.config_hash = hashes.get(p.kind, "")
        return plans

    # ------------------------------------------------------------------ up
    def up(self, values: dict[str, str], *, rendered: Path, on_progress: Callable[[str, list[ServiceState]], None] | None = None,
           wait_timeout: int = 600) -> list[ServiceState]:
        """Start every service that is not running with the same program, configs and
        environment; wait until each is ready. A failure stops what this call started."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        loopback.copy_configs(rendered, self.run_dir)
        plans = self.plan(values)
        state = self._read_state()
        keep = {p.name for p in plans if p.name in state and state[p.name].alive() and state[p.name].fingerprint == p.fingerprint()}
        # Whatever runs with other settings, or is no longer part of the stack, stops first.
        stale = {n: r for n, r in state.items() if n not in keep and r.alive()}
        if stale:
            if on_progress:
                on_progress(f"stopping {len(stale)} changed service(s)", [])
            self._stop(stale, self._stop_timeouts(plans))
        # What this up did, for its closing lines: kept running, restarted (changed), started.
        self.last_up = {"kept": sorted(keep), "restarted": sorted(n for n in stale if any(p.name == n for p in plans)),
                        "started": sorted(p.name for p in plans if p.name not in keep and p.name not in stale),
                        "stopped": sorted(n for n in stale if not any(p.name == n for p in plans))}
        state = {n: r for n, r in state.items() if n in keep}
        self._write_state(state)
        self._check_ports([p for p in plans if p.name not in keep])
        started: list[str] = []
        deadline = time.monotonic() + wait_timeout
        previous = _on_sigterm()
        try:
            for wave in sorted({p.wave for p in plans}):
                batch = [p for p in plans if p.wave == wave and p.name not in keep]
                for p in batch:
                    self._prepare(p, values)
                    state[p.name] = self._start(p)
                    started.append(p.name)
                    self._write_state(state)
                self._wait_ready(batch, state, deadline, on_progress)
                for p in batch:
                    self._after_ready(p)
        except BaseException:
            self._stop({n: state[n] for n in started if n in state}, self._stop_timeouts(plans))
            for n in started:
                state.pop(n, None)
            self._write_state(state)
            raise
        finally:
            try:
                signal.signal(signal.SIGTERM, previous)
            except ValueError:  # not the main thread: nothing was installed
                pass
        return self.status()

    def _stop_timeouts(self, plans: list[ServicePlan]) -> dict[str, tuple[int, int]]:
        return {p.name: (p.stop_timeout, p.stop_signal) for p in plans}

    def _check_ports(self, plans: list[ServicePlan]) -> None:
        for p in plans:
            for port_name, port in self.ports.get(p.name, {}).items():
                if not loopback.port_free(port):
                    raise PortTaken(
                        f"port {port} on 127.0.0.1 ({p.name} {port_name}) is already in use",
                        hint=f"stop what holds it (`obskit down --env {self.env_name}` if it is an old run), "
                             f"or move the block in obskit.yaml, so that every later command uses it too: "
                             f"environments: {{{self.env_name}: {{base_port: {loopback.free_block()}}}}}",
                    )

    def _prepare(self, p: ServicePlan, values: dict[str, str]) -> None:
        if p.kind == "gateway":
            from obskit.tools import nginx

            prepared = nginx.prepare(self.run_dir / "configs" / "gateway", p.env)
            nginx.test_config(prepared.conf)
        elif p.kind == "otelcol":
            from obskit.tools.run import run

            run([p.argv[0], "validate", *p.argv[1:]], env={**os.environ, **p.env}, timeout=60)
        elif p.kind == "postgres":
            _init_postgres(p, self.spec, self.run_dir, values)
        elif p.kind == "object-store" and "S3_DATA_DIR" in p.env:
            for folder in (p.env["S3_DATA_DIR"] + "/objects", p.env["S3_DATA_DIR"] + "/meta"):
                Path(folder).mkdir(parents=True, exist_ok=True)
        elif p.kind == "grafana":
            for sub in ("log", "plugins"):
                Path(p.env["GF_PATHS_DATA"], sub).mkdir(parents=True, exist_ok=True)
        if p.kind in ("loki", "mimir", "grafana"):
            Path(self.run_dir, "data", p.name).mkdir(parents=True, exist_ok=True)

    def _start(self, p: ServicePlan) -> Running:
        """Start a program in a session of its own, under the supervisor that records how it
        ends (a program run as another user, Postgres as root, runs without it)."""
        log = self.log_path(p.name)
        exits = self.run_dir / "exits"
        exits.mkdir(exist_ok=True)
        exit_file = exits / f"{p.name}.txt"
        with open(log, "ab") as fh, open(exit_file, "w") as record:
            fh.write(f"\n--- obskit: starting {p.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
            fh.flush()
            supervised = p.user is None
            argv = [sys.executable, "-I", "-S", SUPERVISOR, str(record.fileno()), *p.argv] if supervised else p.argv
            proc = subprocess.Popen(
                argv, env={**_base_env(), **p.env}, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.run_dir, start_new_session=True, user=p.user, group=p.group,
                pass_fds=(record.fileno(),) if supervised else (),
            )
        pid = proc.pid
        if supervised:
            pid = _supervised_pid(exit_file, proc)
        return Running(pid, p.argv[0], p.fingerprint(), time.time(), _start_ticks(pid) or 0, group=proc.pid,
                       exit_file=str(exit_file) if supervised else "")

    def _wait_ready(self, batch: list[ServicePlan], state: dict[str, Running], deadline: float,
                    on_progress) -> None:
        pending = {p.name: p for p in batch}
        starts = {p.name: time.monotonic() for p in batch}
        session = requests.Session()
        session.trust_env = False
        while pending:
            for name, p in list(pending.items()):
                if not state[name].alive():
                    raise StartFailed(self._failure(name, "exited"), failing=[name],
                                      hint=f"fix the cause above, then `obskit up --env {self.env_name}` again")
                if _probes_pass(session, p.probes):
                    state[name].ready_after = round(time.monotonic() - starts[name], 2)
                    self._write_state(state)
                    del pending[name]
                elif time.monotonic() - starts[name] > p.start_timeout or time.monotonic() > deadline:
                    raise StartFailed(self._failure(name, f"not ready after {int(time.monotonic() - starts[name])} s"),
                                      failing=[name], hint=f"`obskit logs {name} --env {self.env_name}` shows more")
            if on_progress:
                on_progress("waiting for " + ", ".join(sorted(pending)) if pending else "ready", self.status())
            if pending:
                time.sleep(0.25)

    def _after_ready(self, p: ServicePlan) -> None:
        if p.kind == "object-store":
            # The buckets of the spec, as compose's bucket job makes them in MinIO (signed
            # requests: versitygw checks them).
            import boto3
            import botocore.exceptions

            s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.ports['object-store']['s3']}",
                              aws_access_key_id=p.env["S3_ACCESS_KEY_ID"], aws_secret_access_key=p.env["S3_SECRET_ACCESS_KEY"],
                              region_name=self.spec.object_store.region)
            region = self.spec.object_store.region
            where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            for bucket in self.spec.object_store.buckets.model_dump().values():
                try:
                    s3.create_bucket(Bucket=bucket, **where)
                except botocore.exceptions.ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code", "")
                    if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise StartFailed(f"the local S3 API refused to create bucket {bucket}: {code} {exc}") from None

    def _failure(self, name: str, what: str) -> str:
        lines = self.tail(name, LOG_LINES_ON_FAILURE)
        body = "\n".join("    " + line for line in lines)
        return f"{name} {what}; its last {len(lines)} log lines ({self.log_path(name)}):\n{body}"

    # ------------------------------------------------------------------ down
    def down(self, *, volumes: bool = False) -> bool:
        """Stop every service by PID, in reverse start order. False: nothing ran here."""
        state = self._read_state()
        if not state and not self.run_dir.exists():
            return False
        try:
            plans = self._stop_timeouts(self.plan(self._values()))
        except ObskitError:
            plans = {}
        self._stop(state, plans)
        self._write_state({})
        if volumes:
            shutil.rmtree(self.run_dir / "data", ignore_errors=True)
        return True

    def _values(self) -> dict[str, str]:
        from obskit.secrets import SecretStore

        return SecretStore(self.project.state_dir, self.env_name).load()

    def _stop(self, state: dict[str, Running], how: dict[str, tuple[int, int]]) -> None:
        order = sorted(state, key=lambda n: (WAVES.get(component_of(n), 9), n), reverse=True)
        for wave in sorted({WAVES.get(component_of(n), 9) for n in order}, reverse=True):
            batch = [n for n in order if WAVES.get(component_of(n), 9) == wave and state[n].alive()]
            for n in batch:
                _signal_group(state[n].group or state[n].pid, how.get(n, (60, signal.SIGTERM))[1])
            until = {n: time.monotonic() + how.get(n, (60, signal.SIGTERM))[0] for n in batch}
            while batch:
                batch = [n for n in batch if state[n].alive()]
                for n in [n for n in batch if time.monotonic() > until[n]]:
                    _signal_group(state[n].group or state[n].pid, signal.SIGKILL)
                if batch:
                    time.sleep(0.1)
            for n in order:  # whatever the group left behind
                if WAVES.get(component_of(n), 9) == wave:
                    _signal_group(state[n].group or state[n].pid, signal.SIGKILL)

    # ------------------------------------------------------------------ status, logs
    def status(self) -> list[ServiceState]:
        self.follow_running()
        state = self._read_state()
        session = requests.Session()
        session.trust_env = False
        try:
            plans = {p.name: p for p in self.plan(self._values())}
        except ObskitError:
            plans = {}
        out = []
        for name in sorted(state, key=lambda n: (WAVES.get(component_of(n), 9), n)):
            r = state[name]
            alive = r.alive()
            health = ""
            if alive and name in plans:
                health = "healthy" if _probes_pass(session, plans[name].probes) else "starting"
            ports = tuple(f"127.0.0.1:{p}" for p in self.ports.get(name, {}).values())
            how, code = ("running", 0) if alive else r.ended()
            out.append(ServiceState(name, f"pid {r.pid}", how, health, code, ports))
        return out

    def ready_times(self) -> dict[str, float]:
        """Seconds each running service took from start to ready (as recorded by ``up``)."""
        return {n: r.ready_after for n, r in self._read_state().items() if r.ready_after is not None}

    def tail(self, service: str, n: int) -> list[str]:
        try:
            return self.log_path(service).read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return []

    def log_files(self, service: str) -> list[tuple[str, Path]]:
        """(label, file) of each log a service writes: the gateway's access and error logs
        are files of their own, beside what nginx prints."""
        files = [(service, self.log_path(service))]
        if component_of(service) == "gateway":
            logs = self.run_dir / "logs"
            files += [(f"{service} error", logs / f"{service}-error.log"),
                      (f"{service} access", logs / f"{service}-access.log")]
        return files

    def logs(self, services: list[str] | None, *, tail: int = 200, follow: bool = False) -> Iterator[str]:
        if not self.run_dir.is_dir():
            raise UsageError(f"the '{self.env_name}' stack never ran here: there are no logs yet",
                             hint=f"start it with `obskit up --env {self.env_name}`")
        names = services or [n for n in self.services if self.log_path(n).exists()]
        unknown = [n for n in names if n not in self.services]
        if unknown:
            raise UsageError(f"no service {unknown[0]} in environment '{self.env_name}'",
                             hint="services: " + ", ".join(self.services))
        streams = [(label, path) for name in names for label, path in self.log_files(name)
                   if path.exists() or label == name]
        handles = {}
        for label, path in streams:
            prefix = f"{label} | " if len(streams) > 1 else ""
            try:
                lines = path.read_text(errors="replace").splitlines()[-tail:]
            except OSError:
                lines = []
            for line in lines:
                yield prefix + line + "\n"
            try:
                fh = open(path, errors="replace")
                fh.seek(0, os.SEEK_END)
                handles[label] = (fh, prefix)
            except OSError:
                pass
        try:
            while follow:
                quiet = True
                for fh, prefix in handles.values():
                    line = fh.readline()
                    while line:
                        quiet = False
                        yield prefix + line
                        line = fh.readline()
                if quiet:
                    time.sleep(0.2)
        finally:
            for fh, _ in handles.values():
                fh.close()


# --------------------------------------------------------------------------- helpers


def _tree_hash(folder: Path) -> str:
    """A hash over every file below ``folder`` (names and bytes); empty when there is none."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []:
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _host_args(comp: Component, configs: Path) -> list[str]:
    """The component's container command with its container config paths replaced by the
    run folder's copy of the same files."""
    args = []
    for arg in comp.command:
        for rel, container_path in comp.copies:
            arg = arg.replace(container_path, str(configs / comp.name / rel))
        args.append(arg)
    return args


def _probe_url(p: Probe, ports: dict[str, int], tenant: str) -> tuple[str, dict, tuple[int, ...]]:
    headers = {"X-Scope-OrgID": tenant} if p.tenant else {}
    host = "localhost" if p.scheme == "https" else "127.0.0.1"
    return f"{p.scheme}://{host}:{ports[p.port]}{p.path}", headers, p.accept


def _probes_pass(session: requests.Session, probes) -> bool:
    import socket

    for url, headers, accept in probes:
        if url.startswith("tcp://"):
            host, port = url[6:].rsplit(":", 1)
            try:
                with socket.create_connection((host, int(port)), timeout=1):
                    pass
            except OSError:
                return False
            continue
        try:
            # The gateway's certificate is checked by verify; readiness only asks whether it answers.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = session.get(url, headers=headers, timeout=2, verify=False)
        except requests.RequestException:
            return False
        if r.status_code not in accept:
            return False
    return True


SUPERVISOR = str(Path(__file__).with_name("supervise.py"))


def _supervised_pid(exit_file: Path, proc: subprocess.Popen) -> int:
    """The program's PID, as its supervisor records it first thing."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            first = exit_file.read_text().split("\n", 1)[0]
        except OSError:
            first = ""
        if first.startswith("pid ") and first[4:].isdigit():
            return int(first[4:])
        if proc.poll() is not None:
            break
        time.sleep(0.002)
    return proc.pid  # the supervisor died at once: watch it instead, it is not alive


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _base_env() -> dict[str, str]:
    """What the processes inherit: a plain environment, without obskit's own settings or
    proxies (every address they talk to is on 127.0.0.1)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
    return {k: v for k, v in os.environ.items() if k in keep}


def _postgres_user() -> tuple[int | None, int | None]:
    """Postgres refuses to run as root: as root, run it as the `postgres` user (or nobody)."""
    if os.geteuid() != 0:
        return None, None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            continue
    raise StartFailed("postgres cannot run as root and there is no `postgres` or `nobody` user to run it as")


def _init_postgres(p: ServicePlan, spec: Spec, run_dir: Path, values: dict[str, str]) -> None:
    """A private cluster in the run folder, made once: initdb with the generated password,
    then Grafana's database, created in single-user mode (no client programs needed)."""
    data = Path(p.env["PGDATA"])
    socket_dir = run_dir / "postgres-socket"
    socket_dir.mkdir(parents=True, exist_ok=True)
    bindir = Path(p.argv[0]).parent
    data.mkdir(parents=True, exist_ok=True)
    if p.user is not None:
        os.chown(socket_dir, p.user, p.group)
        _check_reachable(data.parent, p.user)
    if (data / "PG_VERSION").exists():
        return
    os.chmod(data, 0o700)
    pwfile = run_dir / ".pgpass-init"
    pwfile.write_text(p.env["POSTGRES_PASSWORD"] + "\n")
    os.chmod(pwfile, 0o600)
    if p.user is not None:
        os.chown(data, p.user, p.group)
        os.chown(pwfile, p.user, p.group)
    try:
        _as(p, [str(bindir / "initdb"), "-D", str(data), "-U", p.env["POSTGRES_USER"], f"--pwfile={pwfile}",
                "-A", "scram-sha-256", "-E", "UTF8", "--no-instructions"], run_dir)
    finally:
        pwfile.unlink(missing_ok=True)
    sql = f'CREATE DATABASE "{p.env["POSTGRES_DB"]}" OWNER "{p.env["POSTGRES_USER"]}";\n'
    _as(p, [str(bindir / "postgres"), "--single", "-D", str(data), "-j", "postgres"], run_dir, stdin=sql)


def _check_reachable(path: Path, uid: int) -> None:
    """Every folder above the cluster must let its user through, or postgres cannot start."""
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            raise StartFailed(
                f"postgres runs as uid {uid} and cannot enter {parent} (mode {oct(st.st_mode & 0o777)})",
                hint="keep the project in a folder others may enter (chmod o+x), or use an external database",
            )


def _as(p: ServicePlan, argv: list[str], cwd: Path, stdin: str | None = None) -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=cwd, user=p.user, group=p.group,
                            env={**_base_env(), "LC_ALL": "C"}, timeout=120)
    if result.returncode != 0:
        raise StartFailed(f"{Path(argv[0]).name} failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()[-800:]}")


def _on_sigterm():
    """SIGTERM during a start behaves like Ctrl-C: what was started is stopped."""
    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return signal.getsignal(signal.SIGTERM)


def running_endpoints(project, env_name: str, ep):
    """``ep`` (from the spec) pointed at the ports the environment's stack runs on, when a
    process stack runs elsewhere; with the sentence that says so (or None)."""
    import dataclasses

    env = project.resolved.environment(env_name)
    if not isinstance(env, ProcessEnvironment):
        return ep, None
    rt = ProcessRuntime(project, env_name)
    note = rt.follow_running()
    if note is None:
        return ep, None
    base = f"https://{env.hostname}:{rt.ports['gateway']['https']}"
    return dataclasses.replace(ep, gateway=base, grafana=f"{base}{project.spec.grafana.sub_path}"), note
