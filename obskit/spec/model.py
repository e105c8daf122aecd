"""The typed obskit spec.

Every model forbids unknown keys. Component settings (Loki, Mimir, gateway, ...) are
global: they shape config files, which must be byte-identical in every environment.
Environments only carry deployment facts (addresses, ports, domain, sizes), which
become environment-variable bindings, never config text.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address
from typing import Annotated, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# --------------------------------------------------------------------------- types

NAME_RE = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
DURATION_RE = r"^[0-9]+(ms|s|m|h|d|w|y)$"
SIZE_RE = r"^[0-9]+[kmg]?$"


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise PydanticCustomError(
            "bad_port", "bad port {port}: a port is a number from 1 to 65535", {"port": value}
        )
    return value


Port = Annotated[int, AfterValidator(_port)]
Name = Annotated[str, Field(pattern=NAME_RE)]
Duration = Annotated[str, Field(pattern=DURATION_RE)]
Size = Annotated[str, Field(pattern=SIZE_RE)]

SECRET_REF_RE = re.compile(r"^(env|ssm):[A-Za-z0-9_./-]+$")


def _secret_ref(value: str) -> str:
    if not SECRET_REF_RE.match(value):
        # Never echo the value: it may be a real secret pasted into the spec.
        raise PydanticCustomError(
            "plain_secret",
            "a secret is written here in plain text; the spec only holds references to secrets",
        )
    return value


SecretRef = Annotated[str, AfterValidator(_secret_ref)]
"""A reference to a secret: ``env:VAR`` (read from the environment when needed) or
``ssm:/path`` (an SSM parameter). Plain values are refused."""

_EXACT_TAG = re.compile(
    r"^(?P<repo>[a-z0-9][a-z0-9._/-]*):(?P<tag>[A-Za-z0-9._-]+)(@sha256:[0-9a-f]{64})?$"
)


def _pinned_image(value: str) -> str:
    m = _EXACT_TAG.match(value)
    if not m:
        raise PydanticCustomError(
            "unpinned_image",
            "image '{image}' is not pinned: write repository:exact-version (optionally @sha256:digest)",
            {"image": value},
        )
    tag = m.group("tag")
    # An exact version has at least major.minor.patch, or is a dated release tag.
    # PostgreSQL numbers releases major.minor, so 17.6 is exact there.
    exact = re.search(r"\d+\.\d+\.\d+", tag) or re.match(r"RELEASE\.\d{4}-", tag)
    if m.group("repo").rsplit("/", 1)[-1] == "postgres":
        exact = exact or re.match(r"^\d+\.\d+(-[a-z0-9]+)?$", tag)
    if not exact:
        raise PydanticCustomError(
            "unpinned_image",
            "image '{image}' uses a floating tag '{tag}'; pin an exact version such as 1.2.3",
            {"image": value, "tag": tag},
        )
    return value


Image = Annotated[str, AfterValidator(_pinned_image)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------- stack


class Images(Model):
    """Every image the stack runs, pinned to an exact version. This is the only place."""

    grafana: Image = "grafana/grafana:13.2.0"
    postgres: Image = "postgres:17.10"
    loki: Image = "grafana/loki:3.7.6"
    mimir: Image = "grafana/mimir:3.2.0"
    otelcol: Image = "otel/opentelemetry-collector-contrib:0.159.0"
    gateway: Image = "nginx:1.30.5"
    # MinIO is archived upstream and gone from Docker Hub: quay.io keeps its last images.
    object_store: Image = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
    object_store_client: Image = "quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z"


class RateLimit(Model):
    """Gateway limits applied per credential."""

    requests_per_second: int = Field(50, ge=1, le=100000)
    burst: int = Field(200, ge=0, le=1000000)


class Tenant(Model):
    name: Name
    description: str = ""
    limits: RateLimit = RateLimit()


class Operators(Model):
    """The operators' tenant holds the stack's own telemetry (gateway logs, self-metrics)."""

    tenant: Name = "ops"
    admin_user: Name = "obskit-admin"


class Loki(Model):
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    schema_from: str = Field("2024-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    retention_period: Duration = "744h"
    ingestion_rate_mb: int = Field(16, ge=1)
    ingestion_burst_size_mb: int = Field(32, ge=1)
    max_line_size: Size = "256k"
    otlp_index_labels: list[str] = Field(
        default_factory=lambda: [
            "service.name",
            "service.namespace",
            "deployment.environment",
            "deployment.environment.name",
            "k8s.pod.name",
        ],
        description="OTLP resource attributes Loki indexes as labels. service.instance.id is left out on purpose: SDKs set a random one per process, which makes a new stream per run.",
    )


class Mimir(Model):
    replicas: int = Field(3, ge=1, le=9)
    replication_factor: int = Field(3, ge=1, le=5)
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    retention_period: Duration | Literal["0"] = "0"
    ingestion_rate: int = Field(100000, ge=1)
    ingestion_burst_size: int = Field(1000000, ge=1)
    max_global_series_per_user: int = Field(1500000, ge=0)
    otel_metric_suffixes: bool = Field(
        False,
        description="Add Prometheus unit/type suffixes (_total, _seconds) to OTLP metric names. Mimir 3 defaults to none.",
    )

    @model_validator(mode="after")
    def _rf_fits(self) -> "Mimir":
        if self.replication_factor > self.replicas:
            raise PydanticCustomError(
                "replication",
                "replication_factor {rf} is larger than replicas {n}: writes could never reach quorum",
                {"rf": self.replication_factor, "n": self.replicas, "at": "replication_factor"},
            )
        return self


class Collector(Model):
    tenant: Name | None = Field(
        None, description="The tenant the collector pushes as; defaults to the first tenant."
    )
    memory_limit_mib: int = Field(400, ge=32)
    memory_spike_limit_mib: int = Field(100, ge=8)
    batch_size: int = Field(8192, ge=1)
    batch_timeout: Duration = "1s"

    @model_validator(mode="after")
    def _spike(self) -> "Collector":
        if self.memory_spike_limit_mib >= self.memory_limit_mib:
            raise PydanticCustomError(
                "memory",
                "memory_spike_limit_mib must be smaller than memory_limit_mib",
                {"at": "memory_spike_limit_mib"},
            )
        return self


class Grafana(Model):
    admin_user: Name = "admin"
    admin_password: SecretRef | None = Field(
        None, description="Leave unset: obskit generates one. Or env:VAR / ssm:/path."
    )
    sub_path: str = Field("/grafana", pattern=r"^/[a-z0-9-]+$")
    database: Name = "grafana"
    database_user: Name = "grafana"


class Gateway(Model):
    client_max_body_size: Size = "16m"
    keepalive_connections: int = Field(32, ge=1)
    max_fails: int = Field(3, ge=1)
    fail_timeout: Duration = "10s"


class Buckets(Model):
    loki_chunks: str = "loki-chunks"
    loki_ruler: str = "loki-ruler"
    mimir_blocks: str = "mimir-blocks"
    mimir_ruler: str = "mimir-ruler"
    mimir_alertmanager: str = "mimir-alertmanager"

    @field_validator("*")
    @classmethod
    def _bucket_name(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9.-]{1,40}[a-z0-9]$", v):
            raise PydanticCustomError(
                "bucket", "bad bucket name '{v}': 3-42 lowercase letters, digits, '-' or '.'", {"v": v}
            )
        return v


class ObjectStore(Model):
    """Where Loki and Mimir keep their data.

    ``minio`` runs MinIO inside the local stack (archived upstream: pinned to its last
    release). ``external`` points at any S3 API (SeaweedFS, Garage, RustFS, versitygw,
    a real S3) through ``endpoint`` and credential references. AWS environments always
    use S3 itself with IAM task roles.
    """

    provider: Literal["minio", "external"] = "minio"
    endpoint: str | None = Field(None, description="host:port of an external S3 API")
    insecure: bool = False
    region: str = "us-east-1"
    access_key_id: SecretRef | None = None
    secret_access_key: SecretRef | None = None
    buckets: Buckets = Buckets()

    @model_validator(mode="after")
    def _external(self) -> "ObjectStore":
        if self.provider == "external":
            missing = [
                k for k in ("endpoint", "access_key_id", "secret_access_key") if getattr(self, k) is None
            ]
            if missing:
                raise PydanticCustomError(
                    "external_store",
                    "provider 'external' needs {missing}",
                    {"missing": ", ".join(missing), "at": missing[0]},
                )
        return self


class VerifyCase(Model):
    """One acceptance check. Built-in kinds push then query; ``logql`` and ``promql``
    run a query as a tenant's reader and expect results (or none)."""

    name: str = Field(min_length=1, max_length=80)
    kind: Literal[
        "logs", "metrics", "isolation_logs", "isolation_metrics",
        "grafana_health", "grafana_datasources", "grafana_dashboards",
        "logql", "promql",
    ]
    tenant: Name | None = Field(None, description="Default: the first tenant.")
    other_tenant: Name | None = Field(None, description="For isolation checks; default: the second tenant.")
    query: str | None = None
    expect: Literal["results", "empty"] = "results"
    deadline_seconds: int | None = Field(None, ge=1, le=3600)

    @model_validator(mode="after")
    def _query(self) -> "VerifyCase":
        if self.kind in ("logql", "promql") and not self.query:
            raise PydanticCustomError("query", "a {kind} check needs a query", {"kind": self.kind, "at": "query"})
        return self


class Verify(Model):
    """`obskit verify`: the built-in checks plus yours."""

    deadline_seconds: int = Field(60, ge=1, le=3600, description="How long a pushed marker may take to become queryable.")
    cases: list[VerifyCase] = Field(default_factory=list, description="Extra checks, run after the built-in ones.")


# --------------------------------------------------------------------------- environments


class LocalPorts(Model):
    """Host ports of the local stack. Everything else stays on the compose network."""

    gateway_https: Port = 8443
    gateway_http: Port = 8080
    otlp_grpc: Port = 4317
    object_store_console: Port = 9001

    @model_validator(mode="after")
    def _distinct(self) -> "LocalPorts":
        seen: dict[int, str] = {}
        for key, port in self.model_dump().items():
            if port in seen:
                raise PydanticCustomError(
                    "port_clash",
                    "ports.{a} and ports.{b} both use port {port}",
                    {"a": seen[port], "b": key, "port": port, "at": key},
                )
            seen[port] = key
        return self


class ComposeEnvironment(Model):
    """A local docker compose stack."""

    kind: Literal["compose"]
    bind_address: IPv4Address = Field(
        IPv4Address("127.0.0.1"),
        description="Host address the published ports bind to. Keep 127.0.0.1 unless you mean to expose the stack.",
    )
    hostname: str = "localhost"
    ports: LocalPorts = LocalPorts()


FARGATE_MEMORY = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
}


class TaskSize(Model):
    cpu: int = 512
    memory: int = 1024

    @model_validator(mode="after")
    def _fargate(self) -> "TaskSize":
        allowed = FARGATE_MEMORY.get(self.cpu)
        if allowed is None:
            raise PydanticCustomError(
                "fargate_cpu",
                "cpu {cpu} is not a Fargate size (256, 512, 1024, 2048, 4096)",
                {"cpu": self.cpu, "at": "cpu"},
            )
        if self.memory not in allowed:
            raise PydanticCustomError(
                "fargate_memory",
                "memory {mem} MiB does not fit cpu {cpu} on Fargate ({lo}-{hi} MiB)",
                {"mem": self.memory, "cpu": self.cpu, "lo": allowed.start, "hi": allowed.stop - 1, "at": "memory"},
            )
        return self


class AwsSizes(Model):
    gateway: TaskSize = TaskSize(cpu=512, memory=1024)
    grafana: TaskSize = TaskSize(cpu=512, memory=1024)
    loki: TaskSize = TaskSize(cpu=1024, memory=4096)
    mimir: TaskSize = TaskSize(cpu=1024, memory=4096)
    otelcol: TaskSize = TaskSize(cpu=512, memory=1024)


class AwsDatabase(Model):
    engine_version: str = Field("17.5", description="Aurora PostgreSQL version; keep its major equal to images.postgres")
    instance_class: str = "db.t4g.medium"
    instances: int = Field(1, ge=1, le=3)


class AwsEnvironment(Model):
    """An AWS deployment (ECS Fargate behind an ALB), promoted with Terraform."""

    kind: Literal["aws"]
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    domain: str = Field(
        pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$",
        description="Public name of the gateway, e.g. obs.example.com",
    )
    hosted_zone_id: str | None = Field(None, pattern=r"^Z[A-Z0-9]{4,32}$")
    certificate_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:acm:")
    bucket_prefix: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{2,30}-$",
        description="Prefix that makes bucket names globally unique, e.g. acme-obs-prod-",
    )
    vpc_cidr: str = Field("10.40.0.0/16", pattern=r"^\d+\.\d+\.\d+\.\d+/\d+$")
    service_namespace: str = "observability.local"
    log_retention_days: int = 30
    sizes: AwsSizes = AwsSizes()
    database: AwsDatabase = AwsDatabase()

    @model_validator(mode="after")
    def _dns(self) -> "AwsEnvironment":
        if self.certificate_arn is None and self.hosted_zone_id is None:
            raise PydanticCustomError(
                "certificate",
                "set certificate_arn, or hosted_zone_id so obskit can issue a DNS-validated ACM certificate",
                {"at": "certificate_arn"},
            )
        return self


Environment = Annotated[Union[ComposeEnvironment, AwsEnvironment], Field(discriminator="kind")]


# --------------------------------------------------------------------------- root


class Spec(Model):
    """The whole obskit spec."""

    project: Name = "obskit"
    images: Images = Images()
    tenants: list[Tenant] = Field(min_length=1)
    operators: Operators = Operators()
    loki: Loki = Loki()
    mimir: Mimir = Mimir()
    collector: Collector = Collector()
    grafana: Grafana = Grafana()
    gateway: Gateway = Gateway()
    object_store: ObjectStore = ObjectStore()
    verify: Verify = Verify()
    environments: dict[Name, Environment] = Field(min_length=1)

    @field_validator("tenants")
    @classmethod
    def _unique_tenants(cls, tenants: list[Tenant]) -> list[Tenant]:
        first: dict[str, int] = {}
        for i, t in enumerate(tenants):
            if t.name in first:
                raise PydanticCustomError(
                    "duplicate_tenant",
                    "duplicate tenant '{name}' at tenants[{i}] (first declared at tenants[{j}])",
                    {"name": t.name, "i": i, "j": first[t.name], "at": f"[{i}].name"},
                )
            first[t.name] = i
        return tenants

    @model_validator(mode="after")
    def _cross(self) -> "Spec":
        names = [t.name for t in self.tenants]
        if self.operators.tenant in names:
            raise PydanticCustomError(
                "operators_tenant",
                "operators.tenant '{name}' is also a user tenant; pick a name of its own",
                {"name": self.operators.tenant, "at": "operators.tenant"},
            )
        if self.collector.tenant is not None and self.collector.tenant not in names:
            raise PydanticCustomError(
                "collector_tenant",
                "collector.tenant '{name}' is not one of the tenants ({names})",
                {"name": self.collector.tenant, "names": ", ".join(names), "at": "collector.tenant"},
            )
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def collector_tenant(self) -> str:
        return self.collector.tenant or self.tenants[0].name

    @property
    def mimir_replicas(self) -> list[str]:
        return [f"mimir-{i}" for i in range(1, self.mimir.replicas + 1)]
