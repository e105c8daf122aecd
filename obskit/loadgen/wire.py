"""OTLP/HTTP protobuf requests, encoded by hand from precomputed pieces.

The Python SDK builds a message object per record; a generator that must not be the
bottleneck cannot. Here every service's resource, every constant field and every series
is encoded once; producing a request is joining bytes, with the timestamps (fixed 8-byte
fields), values and (realistic logs) bodies written per item. The tests decode what this
module produces with the official opentelemetry-proto classes.

Also here: reading an OTLP export response's ``partial_success``.

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
from typing import NamedTuple, Sequence

from obskit.loadgen.content import BodyMaker

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

_VARINTS = [varint(i) for i in range(1 << 14)]


def _len(n: int) -> bytes:
    return _VARINTS[n] if n < 16384 else varint(n)


class _RecordEncoder:
    """Encodes one log record (all but its timestamp) from its parts, with the constant
    fields (severities, attribute keys and values) encoded once."""

    def __init__(self) -> None:
        self.sev: dict[tuple[int, str], bytes] = {}
        self.attrs: dict[tuple[str, str, int], bytes] = {}

    def variant(self, sev_num: int, sev_text: str, body: str, method: str, route: str, status: int) -> LogVariant:
        return LogVariant(*self.pieces(sev_num, sev_text, body, method, route, status))

    def pieces(self, sev_num: int, sev_text: str, body: str, method: str, route: str, status: int) -> tuple[bytes, bytes]:
        """(head, tail) of a record: what goes before and after its 8 timestamp bytes."""
        sev = self.sev.get((sev_num, sev_text))
        if sev is None:
            sev = self.sev[(sev_num, sev_text)] = varint(2 << 3) + varint(sev_num) + field(3, sev_text.encode())
        attrs = self.attrs.get((method, route, status))
        if attrs is None:
            attrs = self.attrs[(method, route, status)] = (
                field(6, key_value("http.request.method", method))
                + field(6, key_value("http.route", route))
                + field(6, key_value("http.response.status_code", status)))
        b = body.encode()
        value = b"\x0a" + _len(len(b)) + b  # AnyValue.string_value
        rest = sev + b"\x2a" + _len(len(value)) + value + attrs  # LogRecord.body (5), attributes (6)
        return b"\x12" + _len(9 + len(rest)) + b"\x09", rest


class LogVariant(NamedTuple):
    head: bytes  # tag and length of the LogRecord, then the time field's tag
    tail: bytes  # everything after the 8 timestamp bytes


class LogStream:
    """One service's log records.

    ``variety="fast"``: a pool of ``variants`` records encoded once and cycled through;
    only the timestamps change. ``variety="realistic"``: ``records(..., fresh=k)`` makes k
    records new (body drawn by ``content.BodyMaker``, then encoded; each replaces the oldest
    in the pool) and repeats pool records for the rest.

    Timestamps are unique per stream (nanoseconds, strictly increasing), so Loki never
    de-duplicates two generated lines."""

    def __init__(self, service: str, namespace: str, rng: random.Random, variants: int = 64, body_bytes: int = 0,
                 shape: str = "text", variety: str = "fast"):
        self.resource = field(1, resource({
            "service.name": service,
            "service.namespace": namespace,
            "deployment.environment.name": "load",
            "host.name": f"{service}-host",
        }))
        self.maker = BodyMaker(service, rng, shape, body_bytes)
        self.encoder = _RecordEncoder()
        self.variants = [self.encoder.variant(*self.maker.make()) for _ in range(variants)]
        self.realistic = variety == "realistic"
        self.next_ns = 0
        self.i = 0

    def records(self, n: int, now_ns: int, fresh: int | None = None) -> bytes:
        """n records from ``now_ns`` on; ``fresh`` of them new (default: all when realistic)."""
        ts = max(now_ns, self.next_ns)
        parts = []
        variants, nv, i = self.variants, len(self.variants), self.i
        if fresh is None:
            fresh = n if self.realistic else 0
        fresh = min(fresh, n)
        if fresh:
            make, encode = self.maker.make, self.encoder.pieces
            for k in range(fresh):
                head, tail = v = encode(*make())
                variants[(i + k) % nv] = v
                parts += (head, _PACK_Q(ts + k), tail)
        for k in range(fresh, n):
            head, tail = variants[(i + k) % nv]
            parts += (head, _PACK_Q(ts + k), tail)
        self.i = (i + n) % nv
        self.next_ns = ts + n
        return b"".join(parts)

    def resource_logs(self, n: int, now_ns: int, fresh: int | None = None) -> bytes:
        scope_logs = field(1, SCOPE) + self.records(n, now_ns, fresh)
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


# --------------------------------------------------------------------------- responses


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message; raises on malformed input."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, i = _read_varint(buf, i)
        elif kind == 1:
            value, i = buf[i:i + 8], i + 8
        elif kind == 5:
            value, i = buf[i:i + 4], i + 4
        elif kind == 2:
            size, i = _read_varint(buf, i)
            value, i = buf[i:i + size], i + size
        else:
            raise ValueError(f"unsupported wire type {kind}")
        if i > len(buf):
            raise ValueError("truncated message")
        yield number, kind, value


def partial_success(body: bytes, content_type: str = "application/x-protobuf") -> tuple[int, str]:
    """The rejected count and error message of an Export{Logs,Metrics}ServiceResponse's
    ``partial_success`` (field 1: {1: rejected_log_records or rejected_data_points, 2:
    error_message}); (0, "") for an empty or unreadable body. JSON answers are read too."""
    if not body:
        return 0, ""
    try:
        if "json" in (content_type or ""):
            import json

            ps = json.loads(body).get("partialSuccess") or json.loads(body).get("partial_success") or {}
            rejected = next((ps[k] for k in ("rejectedLogRecords", "rejectedDataPoints", "rejected_log_records",
                                               "rejected_data_points") if k in ps), 0)
            return int(rejected), str(ps.get("errorMessage") or ps.get("error_message") or "")
        rejected, message = 0, ""
        for number, kind, value in _fields(body):
            if number == 1 and kind == 2:
                for n2, k2, v2 in _fields(value):
                    if n2 == 1 and k2 == 0:
                        rejected = v2 - (1 << 64) if v2 >= 1 << 63 else v2  # int64
                    elif n2 == 2 and k2 == 2:
                        message = v2.decode("utf-8", "replace")
        return rejected, message
    except (ValueError, IndexError, AttributeError, TypeError):
        return 0, ""
