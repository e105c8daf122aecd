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

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# Go's time.Duration (the collector, nginx's own parser aside) holds about 292 years.
MAX_DURATION_SECONDS = 100 * 31536000


def duration_seconds(value: str) -> float:
    m = re.fullmatch(r"([0-9]+)(ms|s|m|h|d|w|y)", value)
    if not m:
        raise ValueError(value)
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def _duration_bound(value: str) -> str:
    if len(value) > 12 or duration_seconds(value) > MAX_DURATION_SECONDS:
        raise PydanticCustomError(
            "duration_range", "duration '{v}' is too long: at most 100 years", {"v": value}
        )
    return value


def _positive_duration(value: str) -> str:
    if duration_seconds(value) <= 0:
        raise PydanticCustomError("duration_zero", "duration '{v}' must be longer than zero", {"v": value})
    return value


Duration = Annotated[str, Field(pattern=DURATION_RE), AfterValidator(_duration_bound)]
PositiveDuration = Annotated[Duration, AfterValidator(_positive_duration)]
Size = Annotated[str, Field(pattern=SIZE_RE)]

# env:VARIABLE (a shell variable name) or ssm:/path/of/parameter (segments of letters,
# digits, '_', '.', '-'; never '.' or '..' alone). \Z, not $: "$" also matches before a
# trailing newline.
HOSTNAME_RE = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def _hostname(value: str) -> str:
    if not HOSTNAME_RE.fullmatch(value):
        raise PydanticCustomError(
            "hostname", "'{v}' is not a host name (letters, digits, '-' and dots, no spaces)", {"v": value}
        )
    return value


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not HOSTNAME_RE.fullmatch(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise PydanticCustomError(
            "host_port", "'{v}' is not host:port (a host name or address, a colon, a port 1-65535)", {"v": value}
        )
    return value


HostName = Annotated[str, AfterValidator(_hostname)]
HostPort = Annotated[str, AfterValidator(_host_port)]

SECRET_REF_RE = re.compile(r"\A(env:[A-Za-z_][A-Za-z0-9_]{0,254}|ssm:(/?(?!\.{1,2}(/|\Z))[A-Za-z0-9_.-]+)+)\Z")


def _secret_ref(value: str) -> str:
    if not SECRET_REF_RE.match(value):
        if value.startswith(("env:", "ssm:")):
            raise PydanticCustomError(
                "secret_ref",
                "bad secret reference: env: takes a variable name (letters, digits, '_'), ssm: a parameter "
                "path (/a/b, letters, digits, '_', '.', '-')",
            )
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
    r"(?P<repo>[a-z0-9][a-z0-9._/-]*):(?P<tag>[A-Za-z0-9._-]+)(@sha256:[0-9a-f]{64})?"
)


def _pinned_image(value: str) -> str:
    m = _EXACT_TAG.fullmatch(value)
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
        exact = exact or re.fullmatch(r"\d+\.\d+(-[a-z0-9]+)?", tag)
    if not exact:
        raise PydanticCustomError(
            "unpinned_image",
            "image '{image}' uses a floating tag '{tag}'; pin an exact version such as 1.2.3",
            {"image": value, "tag": tag},
        )
    return value


Image = Annotated[str, AfterValidator(_pinned_image)]


def _scalar_kind(annotation) -> type | None:
    """int, float or bool when a field holds only that (optionally None), else None."""
    import types
    import typing

    args = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) != 1:
        return None
    tp = args[0]
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp if tp in (int, float, bool) else None


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _strict_scalars(cls, data):
        """A number is never true or false, and a whole number is never 2.5 (nor 2.0): YAML
        would otherwise turn `replicas: true` into 1 without a word."""
        if not isinstance(data, dict):
            return data
        for name, info in cls.model_fields.items():
            key = info.alias or name
            if key not in data:
                continue
            value, kind = data[key], _scalar_kind(info.annotation)
            if kind is None or value is None:
                continue
            if kind is bool and not isinstance(value, bool):
                raise PydanticCustomError("strict_bool", "wrong type: expected true or false", {"at": key})
            if kind in (int, float) and isinstance(value, bool):
                raise PydanticCustomError(
                    "strict_number", "wrong type: expected a {what}, not {v}",
                    {"what": "whole number" if kind is int else "number", "v": str(value).lower(), "at": key},
                )
            if kind is int and isinstance(value, float):
                raise PydanticCustomError("strict_number", "wrong type: expected a whole number, not {v}",
                                          {"v": value, "at": key})
        return data


# --------------------------------------------------------------------------- stack


class Images(Model):
    """Every image the stack runs, pinned to an exact version. This is the only place."""

    grafana: Image = "grafana/grafana:13.2.0"
    postgres: Image = "postgres:17.10"
    loki: Image = "grafana/loki:3.7.6"
    mimir: Image = "grafana/mimir:3.2.0"
    otelcol: Image = "otel/opentelemetry-collector-contrib:0.160.0"
    gateway: Image = "nginx:1.30.5"
    # The local S3 API (object_store.provider): versitygw (Apache-2.0, maintained) by
    # default; MinIO is archived upstream and gone from Docker Hub, and quay.io keeps its
    # last image, which gets no more security fixes.
    versitygw: Image = "versity/versitygw:v1.8.0"
    minio: Image = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"

    @field_validator("gateway")
    @classmethod
    def _gateway_resolves_at_run_time(cls, value: str) -> str:
        # The gateway config re-resolves upstream names with `server ... resolve`, which
        # nginx parses from 1.27.3 on; an older image would refuse to start.
        from obskit.tools.nginx import supports_upstream_resolve

        m = re.match(r"^\d+\.\d+\.\d+", _EXACT_TAG.fullmatch(value).group("tag"))
        if m and not supports_upstream_resolve(tuple(int(x) for x in m.group(0).split("."))):
            raise PydanticCustomError(
                "gateway_too_old",
                "gateway image '{image}' is older than nginx 1.27.3, which the gateway needs to "
                "re-resolve its upstreams at run time; pin nginx 1.27.3 or newer",
                {"image": value},
            )
        return value


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

    @field_validator("otlp_index_labels")
    @classmethod
    def _attribute_names(cls, names: list[str]) -> list[str]:
        seen: set[str] = set()
        for i, name in enumerate(names):
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,127}", name):
                raise PydanticCustomError(
                    "attribute_name",
                    "'{v}' is not an OTLP resource attribute name (letters, digits, '_' and '.', "
                    "starting with a letter or '_')",
                    {"v": str(name), "at": f"[{i}]"},
                )
            if name in seen:
                raise PydanticCustomError("attribute_name", "'{v}' is listed twice", {"v": name, "at": f"[{i}]"})
            seen.add(name)
        return names


class Mimir(Model):
    replicas: int = Field(3, ge=1, le=9)
    replication_factor: int = Field(
        3, ge=1, le=5,
        description="Copies of each series. Unset, it follows replicas (at most 3): replicas: 1 means one copy.",
    )
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    retention_period: Duration | Literal["0"] = "0"
    ingestion_rate: int = Field(100000, ge=1)
    ingestion_burst_size: int = Field(1000000, ge=1)
    max_global_series_per_user: int = Field(1500000, ge=0)
    otel_metric_suffixes: bool = Field(
        False,
        description="Add Prometheus unit/type suffixes (_total, _seconds) to OTLP metric names. Mimir 3 defaults to none.",
    )

    @model_validator(mode="before")
    @classmethod
    def _rf_follows(cls, data):
        if isinstance(data, dict) and "replication_factor" not in data:
            replicas = data.get("replicas", 3)
            if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 1:
                data = {**data, "replication_factor": min(3, replicas)}
        return data

    @model_validator(mode="after")
    def _rf_fits(self) -> "Mimir":
        if self.replication_factor > self.replicas:
            raise PydanticCustomError(
                "replication",
                "replication_factor {rf} is larger than replicas {n}: writes could never reach quorum",
                {"rf": self.replication_factor, "n": self.replicas, "at": "replication_factor", "related": "replicas"},
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
    scrape_interval: PositiveDuration = Field(
        "15s", description="How often the collector scrapes the stack's own metrics and the host's."
    )

    @model_validator(mode="after")
    def _spike(self) -> "Collector":
        if self.memory_spike_limit_mib >= self.memory_limit_mib:
            raise PydanticCustomError(
                "memory",
                "memory_spike_limit_mib must be smaller than memory_limit_mib",
                {"at": "memory_spike_limit_mib", "related": "memory_limit_mib"},
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
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,40}[a-z0-9]", v) or ".." in v:
            raise PydanticCustomError(
                "bucket", "bad bucket name '{v}': 3-42 lowercase letters, digits, '-' or '.'", {"v": v}
            )
        return v


class ObjectStore(Model):
    """Where Loki and Mimir keep their data.

    ``versitygw`` (default) runs versitygw inside the local stack (Apache-2.0, objects on
    disk). ``minio`` runs MinIO instead (archived upstream: pinned to its last image, which
    gets no security fixes). ``external`` points at any S3 API (SeaweedFS, Garage, RustFS,
    a real S3) through ``endpoint`` and credential references. AWS environments always
    use S3 itself with IAM task roles.
    """

    provider: Literal["versitygw", "minio", "external"] = "versitygw"
    endpoint: HostPort | None = Field(None, description="host:port of an external S3 API")
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
        "grafana_health", "grafana_datasources", "grafana_dashboards", "grafana_alerting",
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


# --------------------------------------------------------------------------- alerting

Severity = Literal["critical", "warning", "info"]
RULE_NAME_RE = r"^[A-Z][A-Za-z0-9]{2,59}$"
RESERVED_TEAMS = ("stack",)


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
        raise PydanticCustomError("url", "'{v}' is not an http(s) URL", {"v": value})
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


def _url_or_secret(value: str) -> str:
    if SECRET_REF_RE.match(value):
        return value
    return _http_url(value)


UrlOrSecret = Annotated[str, AfterValidator(_url_or_secret)]


def _runbook(value: str) -> str:
    if value.startswith("grafana:/"):
        if not re.fullmatch(r"grafana:/[^\s$]*", value):
            raise PydanticCustomError("url", "'{v}' is not a Grafana path such as grafana:/d/uid", {"v": value})
        return value
    return _http_url(value)


RunbookUrl = Annotated[str, AfterValidator(_runbook)]


def _rule_name(value: str) -> str:
    if not re.fullmatch(RULE_NAME_RE, value):
        raise PydanticCustomError(
            "rule_name",
            "bad rule name '{v}': rule names are CamelCase, thing then problem, e.g. HostCpuHigh (3-60 letters and digits)",
            {"v": value},
        )
    return value


class AlertRule(Model):
    """A Grafana-managed alert rule. The query runs as one tenant's reader; the rule fires
    when its value (the last point) is above (``gt``) or below (``lt``) ``threshold``
    for the ``for`` duration, checked every ``interval``.

    Naming convention: CamelCase, thing then problem (``HostCpuHigh``,
    ``CheckoutErrorsHigh``). Rules land in folder ``obskit-<team>``, group
    ``<team>-<interval>``."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, populate_by_name=True)

    name: Annotated[str, AfterValidator(_rule_name)] = Field(description="CamelCase, thing then problem: HostCpuHigh")
    tenant: Name | None = Field(None, description="Whose data the query reads; default: the first tenant.")
    language: Literal["promql", "logql"] = "promql"
    expr: str = Field(min_length=1, description="PromQL, or a LogQL metric query")
    condition: Literal["gt", "lt"] = "gt"
    threshold: float = Field(0, allow_inf_nan=False)
    for_: Duration = Field("5m", alias="for", description="How long the condition must hold before the alert fires")
    interval: PositiveDuration = Field("1m", description="How often the rule is evaluated")
    severity: Severity
    team: Name
    summary: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    runbook_url: RunbookUrl = Field(
        description="Where responders read what to do: an http(s) URL, or grafana:/path inside this stack's Grafana"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    # Default NoData: an alert query that returns nothing usually means the data stopped
    # (an exporter, a scrape, a renamed metric), which must not look like a healthy Normal.
    # A rule whose query is empty in the healthy state (a counter that appears with the
    # first error) says no_data: OK.
    no_data: Literal["OK", "NoData", "Alerting", "KeepLast"] = Field(
        "NoData",
        description="State when the query returns nothing. NoData (default): Grafana raises a no-data "
        "alert; OK: no data is healthy here (the query counts errors that have not happened).",
    )

    @field_validator("team")
    @classmethod
    def _team(cls, v: str) -> str:
        if v in RESERVED_TEAMS:
            raise PydanticCustomError("reserved", "team '{v}' is reserved for obskit's stack rules", {"v": v})
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", key):
                raise PydanticCustomError("label", "bad label name '{k}'", {"k": key, "at": key})
            if key in ("severity", "team", "tenant", "alertname", "grafana_folder"):
                raise PydanticCustomError(
                    "label", "label '{k}' is set by obskit; use the rule's own field", {"k": key, "at": key}
                )
        return v


class _Contact(Model):
    name: Name
    disable_resolve_message: bool = False


class EmailContact(_Contact):
    type: Literal["email"]
    addresses: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    single_email: bool = True


class SlackContact(_Contact):
    type: Literal["slack"]
    url: SecretRef | None = Field(None, description="Incoming-webhook URL, as env:VAR or ssm:/path")
    token: SecretRef | None = Field(None, description="Bot token, with recipient")
    recipient: str | None = Field(None, description="Channel or user, with token")
    mention_channel: Literal["", "here", "channel"] = ""

    @model_validator(mode="after")
    def _how(self) -> "SlackContact":
        if bool(self.url) == bool(self.token):
            raise PydanticCustomError("slack", "slack needs either url, or token and recipient", {"at": "url"})
        if self.token and not self.recipient:
            raise PydanticCustomError("slack", "a slack token needs a recipient", {"at": "recipient"})
        return self


class PagerDutyContact(_Contact):
    type: Literal["pagerduty"]
    integration_key: SecretRef


class TeamsContact(_Contact):
    type: Literal["teams"]
    url: SecretRef = Field(description="The Teams workflow (or connector) URL, as env:VAR or ssm:/path")


class WebhookContact(_Contact):
    type: Literal["webhook"]
    url: UrlOrSecret = Field(description="http(s) URL, or env:VAR / ssm:/path when it carries a token")
    http_method: Literal["POST", "PUT"] = "POST"
    authorization_credentials: SecretRef | None = Field(None, description="Sent as 'Authorization: Bearer ...'")
    max_alerts: int = Field(0, ge=0)


ContactPoint = Annotated[
    Union[EmailContact, SlackContact, PagerDutyContact, TeamsContact, WebhookContact],
    Field(discriminator="type"),
]


class Route(Model):
    """A notification policy below the root: alerts whose labels match go to ``receiver``."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, populate_by_name=True)

    receiver: Name
    severity: list[Severity] = Field(default_factory=list, description="Match any of these severities")
    team: Name | None = None
    matchers: dict[str, str] = Field(default_factory=dict, description="Extra label = value matchers")
    mute_timings: list[Name] = Field(default_factory=list)
    continue_: bool = Field(False, alias="continue", description="Keep matching the next routes too")
    group_wait: Duration | None = None
    repeat_interval: Duration | None = None

    @model_validator(mode="after")
    def _matches(self) -> "Route":
        if not (self.severity or self.team or self.matchers):
            raise PydanticCustomError(
                "route", "a route needs at least one of severity, team or matchers", {"at": "severity"}
            )
        return self


class Policy(Model):
    """The notification policy tree: a default receiver and routes tried in order."""

    receiver: Name
    group_by: list[str] = Field(default_factory=lambda: ["grafana_folder", "alertname"])
    group_wait: Duration = "30s"
    group_interval: PositiveDuration = "5m"
    repeat_interval: PositiveDuration = "4h"
    routes: list[Route] = Field(default_factory=list)


WEEKDAY_RE = r"^(monday|tuesday|wednesday|thursday|friday|saturday|sunday)(:(monday|tuesday|wednesday|thursday|friday|saturday|sunday))?$"


class TimeRange(Model):
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")


class MuteTiming(Model):
    """When matching routes stay quiet, e.g. warnings outside working hours."""

    name: Name
    weekdays: list[Annotated[str, Field(pattern=WEEKDAY_RE)]] = Field(default_factory=list)
    times: list[TimeRange] = Field(default_factory=list)
    days_of_month: list[Annotated[str, Field(pattern=r"^-?\d{1,2}(:-?\d{1,2})?$")]] = Field(default_factory=list)
    location: str = Field("UTC", description="An IANA time zone (tz database), e.g. Europe/Berlin")

    @field_validator("location")
    @classmethod
    def _tz(cls, v: str) -> str:
        import zoneinfo

        ok = bool(re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", v))
        if ok:
            try:
                zoneinfo.ZoneInfo(v)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                ok = False
        if not ok:
            raise PydanticCustomError(
                "time_zone", "'{v}' is not a time zone of the tz database (e.g. Europe/Berlin, UTC)", {"v": v}
            )
        return v

    @model_validator(mode="after")
    def _some(self) -> "MuteTiming":
        if not (self.weekdays or self.times or self.days_of_month):
            raise PydanticCustomError("mute", "a mute timing needs weekdays, times or days_of_month", {"at": "weekdays"})
        return self


class Smtp(Model):
    """Grafana's mail server, for email contact points."""

    host: HostPort = Field(description="host:port")
    user: str | None = None
    password: SecretRef | None = None
    from_address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    from_name: str = "obskit"


class Alerting(Model):
    """Grafana-managed alerting: rules, contact points, the notification policy and mute timings."""

    rules: list[AlertRule] = Field(default_factory=list)
    contact_points: list[ContactPoint] = Field(default_factory=list)
    policy: Policy | None = Field(None, description="Required once contact points are declared")
    mute_timings: list[MuteTiming] = Field(default_factory=list)
    smtp: Smtp | None = None

    @model_validator(mode="after")
    def _refs(self) -> "Alerting":
        def unique(items, what: str, field: str):
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                if item.name in seen:
                    raise PydanticCustomError(
                        "duplicate", "duplicate {what} '{name}' (first at {field}[{j}])",
                        {"what": what, "name": item.name, "field": field, "j": seen[item.name], "at": f"{field}[{i}].name"},
                    )
                seen[item.name] = i

        unique(self.rules, "rule", "rules")
        unique(self.contact_points, "contact point", "contact_points")
        unique(self.mute_timings, "mute timing", "mute_timings")
        contacts = [c.name for c in self.contact_points]
        mutes = [m.name for m in self.mute_timings]
        if self.contact_points and self.policy is None:
            raise PydanticCustomError(
                "policy", "contact points are declared but no policy routes alerts to them", {"at": "policy"}
            )
        if self.policy is not None:
            receivers = [("policy.receiver", self.policy.receiver)] + [
                (f"policy.routes[{i}].receiver", r.receiver) for i, r in enumerate(self.policy.routes)
            ]
            for where, name in receivers:
                if name not in contacts:
                    raise PydanticCustomError(
                        "receiver", "receiver '{name}' is not a declared contact point ({known})",
                        {"name": name, "known": ", ".join(contacts) or "none declared", "at": where},
                    )
            for i, route in enumerate(self.policy.routes):
                for name in route.mute_timings:
                    if name not in mutes:
                        raise PydanticCustomError(
                            "mute", "mute timing '{name}' is not declared under mute_timings",
                            {"name": name, "at": f"policy.routes[{i}].mute_timings"},
                        )
        if any(c.type == "email" for c in self.contact_points) and self.smtp is None:
            raise PydanticCustomError(
                "smtp", "an email contact point needs alerting.smtp (Grafana's mail server)", {"at": "smtp"}
            )
        return self


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
    hostname: HostName = "localhost"
    ports: LocalPorts = LocalPorts()
    config_delivery: Literal["mount", "image"] = Field(
        "mount",
        description=(
            "How the rendered configs reach the containers. mount: bind-mounted read-only from "
            "configs/ (fast to iterate). image: baked into one image per component, built from "
            "images/<component>/Dockerfile, the same images and tags `obskit promote` pushes to ECR."
        ),
    )
    registry: HostPort | None = Field(
        None,
        description=(
            "With config_delivery image: a registry (host:port) the built images are pushed to, "
            "under the repository names ECR gets; the stack then runs them by registry digest, as ECS "
            "does. Unset: the images run from this engine by their content tags."
        ),
    )


# The kernel hands out ephemeral ports in this range (Linux's default); a fixed port there
# can be taken by any outgoing connection between a check and a bind.
EPHEMERAL_PORTS = range(32768, 61000)


class ProcessBinaries(Model):
    """Where the process runtime finds each program; unset: looked up on PATH."""

    loki: str | None = None
    mimir: str | None = None
    otelcol: str | None = Field(None, description="obskit's collector (otelcol-obskit) or otelcol-contrib")
    grafana: str | None = None
    grafana_home: str | None = Field(None, description="Grafana's home (holds conf/ and public/); default: beside the binary")
    nginx: str | None = None
    postgres_bin: str | None = Field(None, description="folder holding initdb, pg_ctl and postgres")
    versitygw: str | None = Field(None, description="versitygw (Apache-2.0): a durable local S3 API on disk")
    moto_server: str | None = Field(None, description="moto's server: an in-memory S3 API (objects do not survive a down)")


class ProcessDatabase(Model):
    """Grafana's Postgres in the process runtime: a private cluster in the run folder, or an
    existing server."""

    mode: Literal["private", "external"] = "private"
    host: str | None = Field(None, description="host:port of an existing Postgres (mode: external)")
    ssl_mode: Literal["disable", "require", "verify-full"] = "disable"
    password: SecretRef | None = Field(None, description="env:VAR or ssm:/path for an existing server's password")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return v if v is None else _host_port(v)

    @model_validator(mode="after")
    def _external(self) -> "ProcessDatabase":
        if self.mode == "external" and not self.host:
            raise PydanticCustomError(
                "database_host", "an external database needs host (host:port)", {"at": "host"}
            )
        if self.mode == "external" and not self.password:
            raise PydanticCustomError(
                "database_password", "an external database needs password (env:VAR or ssm:/path)", {"at": "password"}
            )
        return self


class ProcessEnvironment(Model):
    """The stack as plain processes on 127.0.0.1 (no Docker): the same config bytes."""

    kind: Literal["process"]
    hostname: str = "localhost"
    base_port: Port = Field(
        19100,
        description=(
            "First of a block of consecutive ports on 127.0.0.1 (the gateway's HTTPS port is this "
            "one); keep the block outside the kernel's ephemeral range 32768-60999."
        ),
    )
    binaries: ProcessBinaries = ProcessBinaries()
    database: ProcessDatabase = ProcessDatabase()
    skip: list[Literal["grafana", "mimir"]] = Field(
        default_factory=list,
        description=(
            "Components this environment does not run: Grafana, or Mimir (a logs-only stack: "
            "metric routes answer 502 and verify leaves out its metric checks)."
        ),
    )

    @field_validator("hostname")
    @classmethod
    def _host(cls, v: str) -> str:
        return _hostname(v)

    @model_validator(mode="after")
    def _ports(self) -> "ProcessEnvironment":
        last = self.base_port + PROCESS_PORT_BLOCK - 1
        if last > 65535 or (self.base_port < EPHEMERAL_PORTS.stop and last >= EPHEMERAL_PORTS.start):
            raise PydanticCustomError(
                "base_port",
                "ports {first}-{last} overlap the kernel's ephemeral range 32768-60999 (or pass 65535); "
                "pick a base_port below {below}",
                {"first": self.base_port, "last": last, "below": EPHEMERAL_PORTS.start - PROCESS_PORT_BLOCK, "at": "base_port"},
            )
        return self


# Ports one process environment may use from base_port on (the layout is in bindings).
PROCESS_PORT_BLOCK = 64


FARGATE_MEMORY = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
}


# Fargate task storage in GiB when the spec gives none: Loki (WAL, TSDB index, compactor)
# and Mimir (ingester TSDB head and WAL, compactor and store-gateway folders) keep their
# working folders there; the others use Fargate's 20 GiB.
EPHEMERAL_STORAGE_DEFAULT = {"loki": 40, "mimir": 50}


class TaskSize(Model):
    cpu: int = 512
    memory: int = 1024
    ephemeral_storage_gib: int | None = Field(
        None, ge=21, le=200,
        description="Fargate task storage, 21-200 GiB (Fargate's range); unset: 40 for Loki, 50 for each Mimir "
        "replica, Fargate's 20 for the others",
    )

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
    engine_version: str = Field(
        "17.5",
        pattern=r"^\d+\.\d+$",
        description="Aurora PostgreSQL version the cluster is created with (AWS applies later minor versions); "
        "keep its major equal to images.postgres",
    )
    instance_class: str = "db.t4g.medium"
    instances: int = Field(1, ge=1, le=3)
    restore_snapshot: str | None = Field(
        None,
        pattern=r"^(arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster-snapshot:)?[a-zA-Z][a-zA-Z0-9-]{0,254}$",
        description="Create the database from this cluster snapshot (e.g. the final snapshot `promote --destroy` "
        "left, named in its output kept_on_destroy); read only when the cluster is created",
    )


class AwsDeletionProtection(Model):
    """Deletion protection of what holds state or takes traffic. Turn both off and run
    `obskit promote --apply` before `obskit promote --destroy`."""

    load_balancer: bool = True
    database: bool = True


class AwsGatewayScaling(Model):
    """How many gateway tasks run: ``replicas`` at least, up to ``max_replicas`` on CPU."""

    replicas: int = Field(2, ge=1, le=20, description="Tasks that always run (spread over the two zones)")
    max_replicas: int = Field(4, ge=1, le=50, description="Upper bound of CPU autoscaling; equal to replicas for none")
    cpu_target_percent: int = Field(60, ge=10, le=90, description="Average CPU the autoscaling keeps the tasks at")

    @model_validator(mode="after")
    def _bounds(self) -> "AwsGatewayScaling":
        if self.max_replicas < self.replicas:
            raise PydanticCustomError(
                "replicas",
                "max_replicas {hi} is below replicas {lo}",
                {"hi": self.max_replicas, "lo": self.replicas, "at": "max_replicas"},
            )
        return self


# What CloudWatch Logs accepts as a log group's retention (0: never expire).
CLOUDWATCH_RETENTION_DAYS = (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                             2192, 2557, 2922, 3288, 3653)


def _vpc_cidr(value: str) -> str:
    from ipaddress import IPv4Network

    try:
        net = IPv4Network(value, strict=True)
    except ValueError:
        raise PydanticCustomError(
            "vpc_cidr", "vpc_cidr '{v}' is not a network address with a prefix (e.g. 10.40.0.0/16)", {"v": value}
        ) from None
    if not 16 <= net.prefixlen <= 19:
        raise PydanticCustomError(
            "vpc_cidr",
            "vpc_cidr '{v}' is a /{n}: give a /16 to /19 (obskit cuts /24 public subnets of a /16, and an "
            "ALB subnet must be at least a /27)",
            {"v": value, "n": net.prefixlen},
        )
    if not net.is_private:
        raise PydanticCustomError("vpc_cidr", "vpc_cidr '{v}' is not a private range (RFC 1918)", {"v": value})
    return value


class AwsEnvironment(Model):
    """An AWS deployment (ECS Fargate behind an ALB), promoted with Terraform."""

    kind: Literal["aws"]
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    domain: str = Field(
        pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$",
        description="Public name of the gateway, e.g. obs.example.com",
    )
    hosted_zone_id: str | None = Field(None, pattern=r"^[A-Z0-9]{5,32}$")
    certificate_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:acm:")
    bucket_prefix: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{2,30}-$",
        description="Prefix that makes bucket names globally unique, e.g. acme-obs-prod-",
    )
    vpc_cidr: Annotated[str, AfterValidator(_vpc_cidr)] = "10.40.0.0/16"
    service_namespace: str = "observability.local"
    log_retention_days: int = 30
    sizes: AwsSizes = AwsSizes()
    database: AwsDatabase = AwsDatabase()
    deletion_protection: AwsDeletionProtection = AwsDeletionProtection()
    gateway: AwsGatewayScaling = AwsGatewayScaling()
    wait_for_steady_state: bool = Field(
        True, description="promote --apply waits until every service is stable and fails if one is not"
    )
    ecs_exec: bool = Field(False, description="Allow `aws ecs execute-command` into the tasks")
    alb_access_logs: bool = Field(
        False, description="Keep the load balancer's access logs in a bucket of their own (<bucket_prefix>alb-logs)"
    )

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in CLOUDWATCH_RETENTION_DAYS:
            raise PydanticCustomError(
                "log_retention",
                "log_retention_days {v} is not a CloudWatch Logs retention; use one of {allowed}",
                {"v": v, "allowed": ", ".join(map(str, CLOUDWATCH_RETENTION_DAYS))},
            )
        return v

    @field_validator("service_namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        return _hostname(v)

    @model_validator(mode="after")
    def _dns(self) -> "AwsEnvironment":
        if self.certificate_arn is None and self.hosted_zone_id is None:
            raise PydanticCustomError(
                "certificate",
                "set certificate_arn, or hosted_zone_id so obskit can issue a DNS-validated ACM certificate",
                {"at": "certificate_arn"},
            )
        return self


Environment = Annotated[Union[ComposeEnvironment, ProcessEnvironment, AwsEnvironment], Field(discriminator="kind")]


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
    alerting: Alerting = Alerting()
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
    def _aws_names(self) -> "Spec":
        """AWS names are "<project>-<environment>[-suffix]": the load balancer's holds 32
        characters, and names may not end in or double a hyphen."""
        for env_name, env in self.environments.items():
            if not isinstance(env, AwsEnvironment):
                continue
            name = f"{self.project}-{env_name}"
            if len(name) > 32 or "--" in name:
                raise PydanticCustomError(
                    "aws_name",
                    "AWS resources of this environment are named '{name}' ({n} characters): it must be at most 32 "
                    "characters (the load balancer's limit) without '--'; shorten project or the environment name",
                    {"name": name, "n": len(name), "at": env_name},
                )
            longest = max(len(b) for b in self.object_store.buckets.model_dump().values())
            if len(env.bucket_prefix) + max(longest, len("tfstate"), len("alb-logs")) > 63:
                raise PydanticCustomError(
                    "aws_name",
                    "bucket_prefix '{p}' makes bucket names longer than S3's 63 characters; shorten it",
                    {"p": env.bucket_prefix, "at": f"{env_name}.bucket_prefix"},
                )
        return self

    @model_validator(mode="after")
    def _cross(self) -> "Spec":
        names = [t.name for t in self.tenants]
        if self.operators.tenant in names:
            i = names.index(self.operators.tenant)
            raise PydanticCustomError(
                "operators_tenant",
                "tenant '{name}' is the operators' tenant (operators.tenant), which holds the stack's own "
                "telemetry; name this tenant otherwise, or set operators.tenant to another name",
                {"name": self.operators.tenant, "at": f"tenants[{i}].name"},
            )
        if "ops" in names and self.operators.tenant != "ops":
            raise PydanticCustomError(
                "operators_tenant",
                "tenant name 'ops' is reserved: the operators' datasources use the uids obskit-ops-logs/-metrics",
                {"at": f"tenants[{names.index('ops')}].name"},
            )
        for i, rule in enumerate(self.alerting.rules):
            if rule.tenant is not None and rule.tenant not in [*names, self.operators.tenant]:
                raise PydanticCustomError(
                    "rule_tenant",
                    "rule '{rule}' reads tenant '{name}', which is not declared ({names})",
                    {"rule": rule.name, "name": rule.tenant, "names": ", ".join(names), "at": f"alerting.rules[{i}].tenant"},
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
