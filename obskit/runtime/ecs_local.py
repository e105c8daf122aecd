"""The ECS task definitions, run on a local Docker engine as ECS would run them.

The container definitions are those ``obskit promote`` renders (``obskit.promote.ecs``,
through ``tfvars()``), read from the Terraform variables, never re-derived. Each service is a
task; every value ECS reads from a container definition is carried over to the engine:

- ``image`` (pulled by its URI: obskit's own image, pushed to the registry standing in for
  ECR), ``entryPoint``, ``command``, ``environment``, ``user``,
  ``readonlyRootFilesystem``, ``stopTimeout``;
- ``secrets``: read from SSM by their ``valueFrom`` (an ARN, as Terraform leaves it) just
  before the container is created, as ECS's agent does (moto in tests);
- ``mountPoints``: each task volume is a fresh, empty docker volume of that task (root-owned,
  nothing copied from the image: Fargate's task storage), removed with the task;
- ``healthCheck``: the engine's health check with the same test (exec form for ``CMD``,
  shell for ``CMD-SHELL``), interval, timeout, retries and start period;
- ``dependsOn``: a container starts only when its dependencies reached their condition
  (START, HEALTHY, COMPLETE, SUCCESS);
- ``portMappings``: published on 127.0.0.1 (random ports) for whoever stands in for the ALB.

The containers of one task share one network namespace (``awsvpc``): the task's first
container holds it and the others join it (``--network container:<first>``). All tasks sit on
one docker network where each task answers to its Cloud Map name
(``<service>.<service_namespace>``) as a network alias.

What cannot be the same on one machine enters through one table, :data:`SUBSTITUTIONS`, and
nowhere else (:func:`localize` applies it; tests pin it). What ECS's agent adds to every
container (the task metadata endpoint) is in that table too, and served by
:class:`TaskMetadata` from the engine's own numbers.

The Engine API (HTTP on the engine's unix socket, :class:`obskit.tools.docker.Engine`, the
docker chokepoint) is this module's one way to the engine: the docker CLI cannot give a
health check in exec form (``--health-cmd`` is always a shell), and distroless images (Loki's)
have no shell.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterable, Mapping

from obskit.errors import ObskitError
# The engine, through obskit's docker chokepoint (re-exported: tests and callers name them here).
from obskit.tools.docker import Engine, EngineApiError, engine_socket  # noqa: F401

LABEL = "dev.obskit.ecs-local"
DEFAULT_REGISTRY = "127.0.0.1:5000"


class TaskFailed(ObskitError):
    """A task did not reach a healthy state: an essential container exited, became
    unhealthy, or a secret could not be read. Carries the container's last log lines."""

    exit_code = 4

    def __init__(self, service: str, container: str, reason: str, logs: str = "") -> None:
        self.service, self.container, self.reason, self.logs = service, container, reason, logs
        tail = "\n".join("    " + line for line in logs.strip().splitlines()[-25:])
        super().__init__(f"task {service}: container {container} {reason}" + (f"\n{tail}" if tail else ""))


# --------------------------------------------------------------------------- substitutions


@dataclass(frozen=True)
class Substitution:
    """One thing that cannot be the same on one machine.

    ``kind``: ``placeholder`` (a deploy-time placeholder Terraform fills, replaced in every
    string), ``set`` (a variable's value, where a definition has the variable), ``add`` (a
    variable ECS or the task role gives that the definition does not carry; ``where`` names
    the containers it goes to)."""

    name: str
    kind: str
    value: str  # a template over the fields of Locals (and {container})
    stands_for: str
    where: str = "every container"


# The one table. Keep it small: every row is a difference from AWS that the local run
# cannot prove. Rows are documented in README.md ("The ECS task definitions on the engine").
SUBSTITUTIONS: tuple[Substitution, ...] = (
    Substitution("__OBSKIT_SSM_ARN__", "placeholder", "{ssm_arn_prefix}",
                 "Terraform's SSM ARN prefix (arn:aws:ssm:<region>:<account>:parameter); the account is moto's"),
    Substitution("__OBSKIT_OUTPUT_grafana_database_endpoint__", "placeholder", "{database_endpoint}",
                 "Aurora's endpoint: a Postgres container (the pinned postgres image, TLS on) stands in for it"),
    Substitution("S3_ENDPOINT", "set", "{s3_endpoint}", "S3's regional endpoint: versitygw stands in for it"),
    Substitution("S3_INSECURE", "set", "true", "S3 speaks HTTPS; versitygw speaks plain HTTP on the task network"),
    Substitution("S3_FORCE_PATH_STYLE", "set", "true",
                 "virtual-hosted buckets need wildcard DNS (<bucket>.s3...), which a docker network lacks"),
    Substitution("S3_BUCKET_LOOKUP_TYPE", "set", "path", "as S3_FORCE_PATH_STYLE, for Mimir"),
    Substitution("S3_ACCESS_KEY_ID", "add", "{s3_access_key}",
                 "the task role's credentials: versitygw's static root key", where="containers with S3_ENDPOINT"),
    Substitution("S3_SECRET_ACCESS_KEY", "add", "{s3_secret_key}",
                 "the task role's credentials: versitygw's static root secret", where="containers with S3_ENDPOINT"),
    Substitution("OBSKIT_GW_RESOLVER", "set", "127.0.0.11",
                 "the VPC's Route 53 Resolver (169.254.169.253), which answers Cloud Map names: Docker's "
                 "embedded DNS answers the network aliases"),
    Substitution("ECS_CONTAINER_METADATA_URI_V4", "add", "{metadata_uri}/v4/{container}",
                 "what ECS's agent gives every container: the task metadata endpoint (TaskMetadata serves "
                 "it from the engine's own numbers)"),
)


@dataclass(frozen=True)
class Locals:
    """Where the local stand-ins answer (the values the table fills in)."""

    ssm_arn_prefix: str
    database_endpoint: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    metadata_uri: str = ""


def localize(definitions: list[dict], local: Locals) -> list[dict]:
    """The container definitions of one task with :data:`SUBSTITUTIONS` applied, and
    nothing else changed. Pure: ``definitions`` is left as it is."""
    fields = dict(local.__dict__)
    text = json.dumps(definitions)
    for sub in SUBSTITUTIONS:
        if sub.kind == "placeholder":
            text = text.replace(sub.name, sub.value.format(**fields))
    out = json.loads(text)
    for container in out:
        env = container.setdefault("environment", [])
        names = {e["name"] for e in env} | {s["name"] for s in container.get("secrets", [])}
        for sub in SUBSTITUTIONS:
            value = sub.value.format(**fields, container=container["name"])
            if sub.kind == "set":
                for entry in env:
                    if entry["name"] == sub.name:
                        entry["value"] = value
            elif sub.kind == "add" and sub.name not in names:
                if sub.where == "containers with S3_ENDPOINT" and "S3_ENDPOINT" not in names:
                    continue
                env.append({"name": sub.name, "value": value})
        env.sort(key=lambda e: e["name"])
    return out


# --------------------------------------------------------------------------- the engine


def health_config(check: Mapping) -> dict:
    """An ECS healthCheck as the engine's: the same test, times in nanoseconds. ECS's
    defaults: interval 30 s, timeout 5 s, retries 3, start period 0."""
    s = 1_000_000_000
    return {"Test": list(check["command"]), "Interval": int(check.get("interval", 30)) * s,
            "Timeout": int(check.get("timeout", 5)) * s, "Retries": int(check.get("retries", 3)),
            "StartPeriod": int(check.get("startPeriod", 0)) * s}


def create_body(definition: Mapping, *, env: Mapping[str, str], network: str, aliases: list[str] | None,
                volumes: Mapping[str, str], labels: Mapping[str, str]) -> dict:
    """The Engine API's container-create body for one container definition. ``network``:
    the docker network (the task's first container) or ``container:<id>`` (the others);
    ``volumes``: task volume name -> docker volume; ``env``: the environment with the
    secrets resolved."""
    ports = {f"{p['containerPort']}/{p.get('protocol', 'tcp')}": [{"HostIp": "127.0.0.1", "HostPort": ""}]
             for p in definition.get("portMappings", [])}
    host: dict = {
        "NetworkMode": network,
        "ReadonlyRootfs": bool(definition.get("readonlyRootFilesystem", False)),
        "Mounts": [{"Type": "volume", "Source": volumes[m["sourceVolume"]], "Target": m["containerPath"],
                    "ReadOnly": bool(m.get("readOnly", False)), "VolumeOptions": {"NoCopy": True}}
                   for m in definition.get("mountPoints", [])],
        "Init": False,
    }
    body: dict = {
        "Image": definition["image"],
        "Env": [f"{k}={v}" for k, v in sorted(env.items())],
        "Labels": dict(labels),
        "HostConfig": host,
    }
    if not network.startswith("container:"):
        host["PortBindings"] = ports
        body["ExposedPorts"] = {p: {} for p in ports}
        body["NetworkingConfig"] = {"EndpointsConfig": {network: {"Aliases": aliases or []}}}
    if "entryPoint" in definition:
        body["Entrypoint"] = list(definition["entryPoint"])
    if "command" in definition:
        body["Cmd"] = list(definition["command"])
    if definition.get("user"):
        body["User"] = definition["user"]
    if definition.get("workingDirectory"):
        body["WorkingDir"] = definition["workingDirectory"]
    if "stopTimeout" in definition:
        body["StopTimeout"] = int(definition["stopTimeout"])
    if definition.get("healthCheck"):
        body["Healthcheck"] = health_config(definition["healthCheck"])
    return body


# --------------------------------------------------------------------------- SSM


def read_secrets(definition: Mapping, region: str) -> dict[str, str]:
    """name -> value of a container's ``secrets``, read from SSM by ``valueFrom`` exactly as
    written (an ARN or a name), as ECS's agent does at task start. A parameter SSM does not
    hold stops the task (ECS: ResourceInitializationError); values are never shown."""
    from obskit.promote import cloud

    wanted = {s["name"]: s["valueFrom"] for s in definition.get("secrets", [])}
    if not wanted:
        return {}
    ssm = cloud.client("ssm", region)
    refs = sorted(set(wanted.values()))
    found: dict[str, str] = {}
    for i in range(0, len(refs), 10):
        batch = refs[i:i + 10]
        answer = ssm.get_parameters(Names=batch, WithDecryption=True)
        for p in answer.get("Parameters", []):
            found[p["ARN"]] = found[p["Name"]] = p["Value"]
        missing = answer.get("InvalidParameters") or []
        if missing:
            raise TaskFailed(definition["name"], definition["name"],
                             f"cannot start: SSM has no parameter {', '.join(sorted(missing))} "
                             "(ECS: ResourceInitializationError)")
    return {name: found[ref] for name, ref in wanted.items()}


# --------------------------------------------------------------------------- task metadata


class TaskMetadata:
    """Stands in for ECS's task metadata endpoint (v4): ``/v4/<container>``,
    ``/v4/<container>/task``, ``/v4/<container>/stats`` and ``/v4/<container>/task/stats``,
    from the running containers and the engine's own stats (ECS serves Docker's stats format
    there too). Listens on the docker network's gateway address."""

    def __init__(self, engine: Engine, host: str) -> None:
        self.engine = engine
        self.tasks: dict[str, dict] = {}  # container name -> its task (service, cpu, memory, containers)
        runner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                answer = runner.answer(parts)
                data = json.dumps(answer).encode() if answer is not None else b'{"error":"not found"}'
                self.send_response(200 if answer is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _container(self, task: dict, name: str) -> dict:
        info = self.engine.inspect(task["ids"][name])
        status = "RUNNING" if info["State"]["Running"] else "STOPPED"
        return {"DockerId": info["Id"], "Name": name, "DockerName": info["Name"].lstrip("/"),
                "Image": info["Config"]["Image"], "ImageID": info["Image"], "Labels": info["Config"]["Labels"],
                "DesiredStatus": "RUNNING", "KnownStatus": status, "Type": "NORMAL",
                "Limits": {"CPU": task["cpu"], "Memory": task["memory"]},
                "CreatedAt": info["Created"], "StartedAt": info["State"]["StartedAt"],
                "Networks": [{"NetworkMode": "awsvpc"}]}

    def answer(self, parts: list[str]):
        if len(parts) < 2 or parts[0] != "v4" or parts[1] not in self.tasks:
            return None
        task, name, rest = self.tasks[parts[1]], parts[1], parts[2:]
        try:
            if rest == []:
                return self._container(task, name)
            if rest == ["stats"]:
                return self.engine.stats(task["ids"][name])
            if rest == ["task"]:
                return {"Cluster": task["cluster"], "TaskARN": task["arn"], "Family": task["family"],
                        "Revision": "1", "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING",
                        "Limits": {"CPU": task["cpu"] / 1024, "Memory": task["memory"]},
                        "LaunchType": "FARGATE", "AvailabilityZone": "local",
                        "Containers": [self._container(task, n) for n in task["ids"]]}
            if rest == ["task", "stats"]:
                return {task["ids"][n]: self.engine.stats(task["ids"][n]) for n in task["ids"]}
        except (EngineApiError, KeyError):
            return None
        return None


# --------------------------------------------------------------------------- images


def build_images(plans: Mapping, env_dir: Path, registry: str, *, only: Iterable[str] | None = None,
                 on_line: Callable[[str], None] | None = None) -> dict[str, str]:
    """Build obskit's images (``obskit.images.build``: the pinned base by digest plus the
    rendered configs, with buildx) and push them to ``registry``, which stands in for ECR:
    what ``promote --apply`` does. Returns component -> why it could not be built (its base
    image is on neither the engine nor the registry); a built one is not listed."""
    from obskit import images
    from obskit.tools import docker

    engine = Engine()
    say = on_line or (lambda line: None)
    missing: dict[str, str] = {}
    wanted = set(only) if only is not None else set(plans)
    for component, plan in sorted(plans.items()):
        if component not in wanted:
            continue
        uri = plan.uri(registry)
        # A base present only under its own name (built here, or loaded) has no registry
        # digest: pull it once through the registry mirror, which records one.
        try:
            engine.pull(plan.base)
        except EngineApiError as exc:
            if not engine.exists("images", plan.base):
                missing[component] = (f"its base image {plan.base} is neither on this engine nor in its registry "
                                       "(or the registry mirror)")
                continue
        images.build(plan, env_dir, uri, platform=None, on_line=say)
        say(f"pushing {uri}")
        docker.push(uri)
    return missing


# --------------------------------------------------------------------------- the runner


@dataclass
class ContainerRun:
    service: str
    name: str  # the container definition's name
    docker_name: str
    id: str = ""
    created: float = 0.0
    started: float = 0.0
    healthy: float | None = None

    def seconds_to_healthy(self) -> float | None:
        return None if self.healthy is None else self.healthy - self.started


@dataclass
class Task:
    service: str
    definitions: list[dict]
    containers: dict[str, ContainerRun] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)

    def published(self, engine: Engine, port: int, protocol: str = "tcp") -> int:
        """The 127.0.0.1 port a portMapping's containerPort is published on."""
        first = self.containers[self.definitions[0]["name"]]
        ports = engine.inspect(first.id)["NetworkSettings"]["Ports"] or {}
        return int(ports[f"{port}/{protocol}"][0]["HostPort"])


class LocalEcs:
    """Run the services of one environment's Terraform variables on the engine.

    ``tfvars``: what ``obskit.promote.ecs.tfvars`` returns (images already at the registry
    standing in for ECR). ``account``: the account of the SSM ARNs (moto's). Start with
    :meth:`start`, stop with :meth:`down` (removes every container, volume and the network)."""

    def __init__(self, tfvars: Mapping, *, account: str, name: str | None = None,
                 on_line: Callable[[str], None] | None = None) -> None:
        self.tfvars = tfvars
        self.region = tfvars["region"]
        self.namespace = tfvars["service_namespace"]
        self.name = name or f"obskit-ecs-{pysecrets.token_hex(3)}"
        self.engine = Engine()
        self.say = on_line or (lambda line: None)
        self.tasks: dict[str, Task] = {}
        self.support: dict[str, str] = {}  # stand-in name -> container id
        self.volumes: list[str] = []
        self.metadata: TaskMetadata | None = None
        self.local = Locals(ssm_arn_prefix=f"arn:aws:ssm:{self.region}:{account}:parameter")
        self.network_id = ""

    # -- the shared pieces: the network (VPC + Cloud Map), S3, Aurora, the agent's endpoint

    def _network(self) -> None:
        answer = self.engine.call("POST", "/networks/create",
                                  {"Name": self.name, "CheckDuplicate": True, "Labels": {LABEL: self.name}})
        self.network_id = answer["Id"]
        info = self.engine.call("GET", f"/networks/{self.network_id}")
        gateway = info["IPAM"]["Config"][0]["Gateway"]
        self.metadata = TaskMetadata(self.engine, gateway)
        self.local = Locals(**{**self.local.__dict__, "metadata_uri": self.metadata.uri})

    def _support_container(self, key: str, body: dict) -> str:
        name = f"{self.name}-{key}"
        body = {**body, "Labels": {LABEL: self.name}}
        cid = self.engine.call("POST", f"/containers/create?name={name}", body)["Id"]
        self.support[key] = cid
        self.engine.call("POST", f"/containers/{cid}/start")
        return cid

    def _image(self, image: str) -> None:
        if not self.engine.exists("images", image):
            self.engine.pull(image)

    def start_object_store(self, image: str, buckets: Iterable[str]) -> None:
        """versitygw in place of S3, with a static root key in place of the task role; the
        buckets Terraform's storage module would create."""
        access, secret = f"obskit{pysecrets.token_hex(4)}", pysecrets.token_urlsafe(24)
        self._image(image)
        alias = f"s3.{self.namespace}"
        self._support_container("s3", {
            "Image": image, "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["mkdir -p /data/meta /data/objects && exec /app/versitygw posix --sidecar /data/meta /data/objects"],
            "Env": [f"ROOT_ACCESS_KEY_ID={access}", f"ROOT_SECRET_ACCESS_KEY={secret}", "VGW_PORT=:9000",
                    f"VGW_REGION={self.region}"],
            "ExposedPorts": {"9000/tcp": {}},
            "HostConfig": {"NetworkMode": self.name, "PortBindings": {"9000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}},
            "NetworkingConfig": {"EndpointsConfig": {self.name: {"Aliases": [alias]}}},
        })
        port = int(self.engine.inspect(self.support["s3"])["NetworkSettings"]["Ports"]["9000/tcp"][0]["HostPort"])
        import boto3
        from botocore.config import Config

        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=self.region,
                          aws_access_key_id=access, aws_secret_access_key=secret,
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 10}))
        deadline = time.monotonic() + 60
        while True:
            try:
                s3.list_buckets()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline:
                    raise TaskFailed("s3", "versitygw", "did not answer", self.engine.logs(self.support["s3"]))
                time.sleep(0.5)
        for bucket in sorted(set(buckets)):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        self.local = Locals(**{**self.local.__dict__, "s3_endpoint": f"{alias}:9000",
                               "s3_access_key": access, "s3_secret_key": secret})

    def start_database(self, image: str, work_dir: Path) -> None:
        """The pinned Postgres image in place of Aurora: the database, user and password
        Terraform's rds_grafana module gives Aurora (the password read from SSM by the same
        parameter), TLS on (Grafana's sslmode is require, as Aurora allows)."""
        from obskit import pki

        db = self.tfvars["database"]
        password = read_secrets({"name": "aurora", "secrets": [
            {"name": "p", "valueFrom": f"{self.local.ssm_arn_prefix}/{db['password_parameter'].lstrip('/')}"}]},
            self.region)["p"]
        alias = f"aurora.{self.namespace}"
        tls = Path(work_dir) / "aurora-tls"
        tls.mkdir(parents=True, exist_ok=True)
        ca = pki.new_ca("obskit local aurora")
        server = pki.new_server_cert(ca, [alias])
        for fname, data in (("server.crt", server.cert_pem), ("server.key", server.key_pem)):
            path = tls / fname
            path.write_text(data)
            os.chmod(path, 0o600)
            os.chown(path, 999, 999)  # the image's postgres user, which the key must belong to
        self._image(image)
        self._support_container("aurora", {
            "Image": image,
            "Cmd": ["postgres", "-c", "ssl=on", "-c", "ssl_cert_file=/tls/server.crt", "-c", "ssl_key_file=/tls/server.key"],
            "Env": [f"POSTGRES_PASSWORD={password}", f"POSTGRES_USER={db['username']}", f"POSTGRES_DB={db['name']}"],
            "Healthcheck": {"Test": ["CMD", "pg_isready", "-U", db["username"], "-d", db["name"]],
                            "Interval": 1_000_000_000, "Timeout": 5_000_000_000, "Retries": 60},
            "HostConfig": {"NetworkMode": self.name,
                           "Mounts": [{"Type": "bind", "Source": str(tls), "Target": "/tls", "ReadOnly": True}]},
            "NetworkingConfig": {"EndpointsConfig": {self.name: {"Aliases": [alias]}}},
        })
        self.local = Locals(**{**self.local.__dict__, "database_endpoint": f"{alias}:5432"})
        self._wait_health("aurora", "postgres", self.support["aurora"], 120)

    def start(self) -> None:
        self._network()

    # -- tasks

    def definitions(self, service: str) -> list[dict]:
        """The service's container definitions as promote rendered them, localized."""
        return localize(json.loads(self.tfvars["services"][service]["container_definitions"]), self.local)

    def run_task(self, service: str, definitions: list[dict] | None = None, *, timeout: float = 300,
                 task_id: str | None = None, register: bool = True) -> Task:
        """Start one task and wait until each container with a health check is healthy (the
        dependsOn order decides when each starts). Raises TaskFailed. ``task_id``: a second
        task of the same service; ``register`` False: no Cloud Map name (the task is not a
        target of its service's name)."""
        svc = self.tfvars["services"][service]
        defs = definitions if definitions is not None else self.definitions(service)
        task_id = task_id or service
        task = Task(service, defs)
        self.tasks[task_id] = task
        family = f"{self.tfvars['project']}-{self.tfvars['environment']}-{service}"
        for d in defs:
            for m in d.get("mountPoints", []):
                if m["sourceVolume"] not in task.volumes:
                    vol = f"{self.name}-{task_id}-{m['sourceVolume']}"
                    self.engine.call("POST", "/volumes/create", {"Name": vol, "Labels": {LABEL: self.name}})
                    self.volumes.append(vol)
                    task.volumes[m["sourceVolume"]] = vol
        meta = {"ids": {}, "cpu": svc["cpu"], "memory": svc["memory"], "cluster": self.name, "family": family,
                "arn": f"arn:aws:ecs:{self.region}:000000000000:task/{self.name}/{service}"}
        pending = list(defs)
        holder = defs[0]["name"]
        deadline = time.monotonic() + timeout
        while pending:
            progressed = False
            for d in list(pending):
                if not self._ready_to_start(task, d):
                    continue
                env = {e["name"]: e["value"] for e in d.get("environment", [])}
                env |= read_secrets(d, self.region)
                run = ContainerRun(service, d["name"], f"{self.name}-{task_id}-{d['name']}")
                network = self.name if d["name"] == holder else f"container:{task.containers[holder].id}"
                body = create_body(d, env=env, network=network,
                                   aliases=[f"{service}.{self.namespace}"] if d["name"] == holder and register else None,
                                   volumes=task.volumes, labels={LABEL: self.name, "dev.obskit.ecs-service": service})
                self._image(d["image"])
                run.id = self.engine.call("POST", f"/containers/create?name={run.docker_name}", body)["Id"]
                run.created = time.monotonic()
                task.containers[d["name"]] = run
                meta["ids"][d["name"]] = run.id
                if self.metadata and d["name"] not in self.metadata.tasks:
                    self.metadata.tasks[d["name"]] = meta
                self.engine.call("POST", f"/containers/{run.id}/start")
                run.started = time.monotonic()
                self.say(f"{service}: started {d['name']}")
                pending.remove(d)
                progressed = True
            if pending and not progressed:
                self._check_task(task)
                if time.monotonic() > deadline:
                    raise TaskFailed(service, pending[0]["name"], f"did not start within {timeout:g} s (dependsOn)")
                time.sleep(0.5)
        for d in defs:
            if d.get("healthCheck"):
                run = task.containers[d["name"]]
                self._wait_health(service, d["name"], run.id, max(0.0, deadline - time.monotonic()), task)
                run.healthy = time.monotonic()
                self.say(f"{service}: {d['name']} healthy after {run.seconds_to_healthy():.1f} s")
        return task

    def run_tasks(self, services: Iterable[str], *, timeout: float = 300) -> dict[str, Task]:
        """Start every service's task at once, as ECS starts the services of one apply (a
        gateway waits for the collector's name, for one), and wait until each is healthy.
        Raises the first TaskFailed after every task has settled."""
        from concurrent.futures import ThreadPoolExecutor

        services = list(services)
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            futures = {s: pool.submit(self.run_task, s, timeout=timeout) for s in services}
            errors = []
            for s, f in futures.items():
                try:
                    f.result()
                except ObskitError as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]
        return {s: self.tasks[s] for s in services}

    def _ready_to_start(self, task: Task, d: Mapping) -> bool:
        for dep in d.get("dependsOn", []):
            run = task.containers.get(dep["containerName"])
            if run is None:
                return False
            state = self.engine.inspect(run.id)["State"]
            cond = dep["condition"]
            if cond == "START" and not (state["Running"] or state["FinishedAt"] != "0001-01-01T00:00:00Z"):
                return False
            if cond == "HEALTHY" and state.get("Health", {}).get("Status") != "healthy":
                return False
            if cond in ("COMPLETE", "SUCCESS") and state["Running"]:
                return False
            if cond == "SUCCESS" and state["ExitCode"] != 0:
                raise TaskFailed(task.service, d["name"], f"cannot start: {dep['containerName']} exited {state['ExitCode']}")
        return True

    def _check_task(self, task: Task) -> None:
        """ECS stops a task when an essential container stops."""
        for d in task.definitions:
            run = task.containers.get(d["name"])
            if run is None or not d.get("essential", True):
                continue
            state = self.engine.inspect(run.id)["State"]
            if not state["Running"]:
                raise TaskFailed(task.service, d["name"], f"(essential) exited with code {state['ExitCode']}",
                                 self.engine.logs(run.id))

    def _wait_health(self, service: str, name: str, cid: str, timeout: float, task: Task | None = None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            state = self.engine.inspect(cid)["State"]
            status = (state.get("Health") or {}).get("Status")
            if status == "healthy":
                return
            if not state["Running"]:
                raise TaskFailed(service, name, f"exited with code {state['ExitCode']} before it was healthy",
                                 self.engine.logs(cid))
            if status == "unhealthy":
                probes = (state.get("Health") or {}).get("Log") or []
                last = probes[-1]["Output"].strip() if probes else ""
                raise TaskFailed(service, name, f"is unhealthy (last check: {last[:300]})", self.engine.logs(cid))
            if task is not None:
                self._check_task(task)
            if time.monotonic() > deadline:
                raise TaskFailed(service, name, f"not healthy within {timeout:g} s", self.engine.logs(cid))
            time.sleep(0.5)

    def stop_task(self, task_id: str) -> dict[str, dict]:
        """Stop a task as ECS does (the image's stop signal, then SIGKILL after each
        container's stopTimeout, ECS's default 30 s), dependents first. Returns container ->
        {seconds it took to stop, exit code} (137: it was killed at its stopTimeout)."""
        task = self.tasks.pop(task_id, None)
        out: dict[str, dict] = {}
        if task is None:
            return out
        for d in reversed(task.definitions):
            run = task.containers.get(d["name"])
            if run is None:
                continue
            t0 = time.monotonic()
            timeout = int(d.get("stopTimeout", 30))
            try:
                self.engine.call("POST", f"/containers/{run.id}/stop?t={timeout}", ok=(204, 304), timeout=timeout + 60)
            except EngineApiError:
                pass
            seconds = time.monotonic() - t0
            try:
                code = self.engine.inspect(run.id)["State"]["ExitCode"]
            except EngineApiError:
                code = None
            out[d["name"]] = {"seconds": round(seconds, 1), "exit": code}
            self.engine.call("DELETE", f"/containers/{run.id}?force=1&v=1", ok=(204, 404))
            if self.metadata and (self.metadata.tasks.get(d["name"]) or {}).get("ids", {}).get(d["name"]) == run.id:
                self.metadata.tasks.pop(d["name"], None)
        for vol in task.volumes.values():
            self._remove_volume(vol)
        return out

    def _remove_volume(self, vol: str) -> None:
        try:
            self.engine.call("DELETE", f"/volumes/{vol}?force=1", ok=(204, 404))
        except EngineApiError:
            pass
        if vol in self.volumes:
            self.volumes.remove(vol)

    def stop_tasks(self) -> dict[str, dict]:
        """Stop every task at once (as ECS stops the services of a destroy)."""
        from concurrent.futures import ThreadPoolExecutor

        ids = list(self.tasks)
        if not ids:
            return {}
        with ThreadPoolExecutor(max_workers=len(ids)) as pool:
            futures = {t: pool.submit(self.stop_task, t) for t in ids}
        out = {}
        for t, f in futures.items():
            try:
                out[t] = f.result()
            except ObskitError as exc:
                out[t] = {"error": exc.message}
        return out

    def down(self) -> None:
        """Remove everything this run made: containers, volumes, the network."""
        self.stop_tasks()
        for key, cid in list(self.support.items()):
            self.engine.call("DELETE", f"/containers/{cid}?force=1&v=1", ok=(204, 404))
            self.support.pop(key)
        # Anything labelled with this run (a container created before a failure).
        filters = urllib.parse.quote(json.dumps({"label": [f"{LABEL}={self.name}"]}))
        for c in self.engine.call("GET", f"/containers/json?all=1&filters={filters}") or []:
            self.engine.call("DELETE", f"/containers/{c['Id']}?force=1&v=1", ok=(204, 404))
        for vol in list(self.volumes):
            self._remove_volume(vol)
        if self.network_id:
            self.engine.call("DELETE", f"/networks/{self.network_id}", ok=(204, 404))
            self.network_id = ""
        if self.metadata:
            self.metadata.close()
            self.metadata = None

    def logs(self, service: str, container: str | None = None) -> str:
        task = self.tasks[service]
        run = task.containers[container or task.definitions[0]["name"]]
        return self.engine.logs(run.id)


def services_runnable(tfvars: Mapping, missing_components: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """(services whose every image was built, service -> why not) given the components whose
    images could not be built. A probe sidecar runs the gateway's image."""
    run, skipped = [], {}
    for name, svc in sorted(tfvars["services"].items()):
        comps = {svc["component"]}
        for d in json.loads(svc["container_definitions"]):
            if d["name"] != name:
                comps.add("gateway")
        why = [missing_components[c] for c in sorted(comps) if c in missing_components]
        if why:
            skipped[name] = "; ".join(why)
        else:
            run.append(name)
    return run, skipped
