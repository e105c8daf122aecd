"""OTLP/HTTP protobuf requests, encoded by hand from precomputed pieces.

The Python SDK builds a message object per record and tops out near 30k records/s; a
generator that must not be the bottleneck cannot. Here every service's resource, every
record variant and every series is encoded once; producing a request is joining bytes,
with only the timestamps (fixed 8-byte fields) and values written per item. The tests
decode what this module produces with the official opentelemetry-proto classes.

Messages (opentelemetry-proto v1): ExportLogsServiceRequest{1: ResourceLogs}, ResourceLogs
{1: Resource, 2: ScopeLogs}, ScopeLogs{1: InstrumentationScope, 2: LogRecord},
LogRecord{1: time fixed64, 2: severity_number, 3: severity_text, 5: body AnyValue,
6: attributes, 11: observed_time fixed64}; ExportMetricsServiceRequest{1: ResourceMetrics},
ResourceMetrics{1: Resource, 2: ScopeMetrics}, ScopeMetrics{1: scope, 2: Metric},
Metric{1: name, 3: unit, 5: Gauge{1: NumberDataPoint}}, NumberDataPoint{7: attributes,
3: time fixed64, 4: as_double}.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Sequence

_PACK_Q = struct.Struct("<Q").pack
_PACK_D = struct.Struct("<d").pack


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def string_value(text: str) -> bytes:
    return field(1, text.encode())  # AnyValue.string_value


def key_value(key: str, value: str | int) -> bytes:
    if isinstance(value, int):
        any_value = varint(3 << 3) + varint(value)  # AnyValue.int_value
    else:
        any_value = string_value(value)
    return field(1, key.encode()) + field(2, any_value)


def resource(attributes: dict[str, str | int]) -> bytes:
    return b"".join(field(1, key_value(k, v)) for k, v in attributes.items())


SCOPE = field(1, b"obskit-load") + field(2, b"1")

SEVERITIES = ((9, "INFO"), (13, "WARN"), (17, "ERROR"), (5, "DEBUG"))
ROUTES = ("/api/orders", "/api/orders/{id}", "/api/cart", "/api/checkout", "/api/users/{id}", "/health")
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")


@dataclass(frozen=True)
class LogVariant:
    head: bytes  # tag and length of the LogRecord, then the time field's tag
    tail: bytes  # everything after the 8 timestamp bytes


def _log_variants(service: str, rng: random.Random, count: int, body_bytes: int) -> list[LogVariant]:
    variants = []
    for i in range(count):
        sev_num, sev_text = SEVERITIES[0] if rng.random() < 0.85 else rng.choice(SEVERITIES[1:])
        method, route = rng.choice(METHODS), rng.choice(ROUTES)
        status = 200 if sev_text in ("INFO", "DEBUG") else rng.choice((404, 429, 500, 503))
        duration = rng.randint(1, 900)
        body = (f"{method} {route.replace('{id}', str(rng.randint(1, 99999)))} {status} {duration}ms "
                f"service={service} request_id={rng.getrandbits(64):016x}")
        if len(body) < body_bytes:
            body += " " + "x" * (body_bytes - len(body) - 1)
        rest = (
            varint(2 << 3) + varint(sev_num)
            + field(3, sev_text.encode())
            + field(5, string_value(body))
            + field(6, key_value("http.request.method", method))
            + field(6, key_value("http.route", route))
            + field(6, key_value("http.response.status_code", status))
        )
        length = 1 + 8 + len(rest)  # time field tag + fixed64 + the rest
        variants.append(LogVariant(head=varint(2 << 3 | 2) + varint(length) + b"\x09", tail=rest))
    return variants


class LogStream:
    """One service's log records: a resource, and record variants cycled through.

    Timestamps are unique per stream (nanoseconds, strictly increasing), so Loki never
    de-duplicates two generated lines."""

    def __init__(self, service: str, namespace: str, rng: random.Random, variants: int = 64, body_bytes: int = 0):
        self.resource = field(1, resource({
            "service.name": service,
            "service.namespace": namespace,
            "deployment.environment.name": "load",
            "host.name": f"{service}-host",
        }))
        self.variants = _log_variants(service, rng, variants, body_bytes)
        self.next_ns = 0
        self.i = 0

    def records(self, n: int, now_ns: int) -> bytes:
        ts = max(now_ns, self.next_ns)
        parts = []
        variants, nv, i = self.variants, len(self.variants), self.i
        for k in range(n):
            v = variants[(i + k) % nv]
            parts.append(v.head)
            parts.append(_PACK_Q(ts + k))
            parts.append(v.tail)
        self.i = (i + n) % nv
        self.next_ns = ts + n
        return b"".join(parts)

    def resource_logs(self, n: int, now_ns: int) -> bytes:
        scope_logs = field(1, SCOPE) + self.records(n, now_ns)
        return field(1, self.resource + field(2, scope_logs))


def logs_request(parts: Sequence[bytes]) -> bytes:
    """An ExportLogsServiceRequest from ResourceLogs pieces (each already field 1)."""
    return b"".join(parts)


class SeriesSet:
    """One service's gauge series (``loadgen_value`` with a ``series`` attribute).

    Each series gets at most one point per millisecond with strictly increasing
    timestamps, so Mimir never sees a duplicate or out-of-order sample."""

    METRIC = "loadgen.value"

    def __init__(self, service: str, namespace: str, series: Sequence[int]):
        self.resource = field(1, resource({
            "service.name": service,
            "service.namespace": namespace,
            "deployment.environment.name": "load",
        }))
        self.attrs = [field(7, key_value("series", f"s{s:05d}")) for s in series]
        # Gauge.data_points (1): tag and length, constant per series (fixed-size time and value).
        self.heads = [b"\x0a" + varint(len(a) + 18) + a + b"\x19" for a in self.attrs]
        self.last_ms = [0] * len(self.attrs)
        self.i = 0
        self.name = field(1, self.METRIC.encode())  # no unit: no suffix in Mimir either way

    def __len__(self) -> int:
        return len(self.attrs)

    def points(self, n: int, now_ms: int, value: float) -> bytes:
        parts = []
        heads, last, count, i = self.heads, self.last_ms, len(self.heads), self.i
        for k in range(n):
            j = (i + k) % count
            ts = now_ms if now_ms > last[j] else last[j] + 1
            last[j] = ts
            parts.append(heads[j])
            parts.append(_PACK_Q(ts * 1_000_000))
            parts.append(b"\x21")
            parts.append(_PACK_D(value + k))
        self.i = (i + n) % count
        gauge = b"".join(parts)
        return self.name + field(5, gauge)

    def resource_metrics(self, n: int, now_ms: int, value: float) -> bytes:
        scope_metrics = field(1, SCOPE) + field(2, self.points(n, now_ms, value))
        return field(1, self.resource + field(2, scope_metrics))
