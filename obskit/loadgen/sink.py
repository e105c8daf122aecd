"""A counting OTLP/HTTP receiver: decodes every request with the official protobuf
classes and counts log records and metric data points per tenant (``X-Scope-OrgID`` as
the gateway sets it, else the basic-auth user). ``GET /counts`` returns them as JSON.

Used by obskit's tests (behind the real gateway) and by the generator benchmark; it can
answer a fixed status instead of 200 (with a ``Retry-After``) to exercise rejections, or
200 with an OTLP ``partial_success`` that rejects some records of every request. Every
answered request is counted by status (``answered``), and the items in it (``offered_*``);
``logs`` and ``points`` count only what was kept.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[str, dict[str, int]] = {}

    def add(self, tenant: str, key: str, n: int) -> None:
        with self.lock:
            t = self.data.setdefault(tenant, {"logs": 0, "points": 0, "requests": 0, "bad": 0,
                                              "offered_logs": 0, "offered_points": 0, "answered": {}})
            if key.startswith("answered:"):
                status = key.split(":", 1)[1]
                t["answered"][status] = t["answered"].get(status, 0) + n
            else:
                t[key] += n

    def snapshot(self) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.data))


def count_items(path: str, body: bytes) -> tuple[str, int]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    if path.endswith("/logs"):
        req = ExportLogsServiceRequest.FromString(body)
        return "logs", sum(len(s.log_records) for r in req.resource_logs for s in r.scope_logs)
    req = ExportMetricsServiceRequest.FromString(body)
    n = 0
    for r in req.resource_metrics:
        for s in r.scope_metrics:
            for m in s.metrics:
                kind = m.WhichOneof("data")
                n += len(getattr(m, kind).data_points) if kind else 0
    return "points", n


def partial_response(key: str, rejected: int, message: str) -> bytes:
    """An Export{Logs,Metrics}ServiceResponse whose partial_success rejects ``rejected``."""
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb

    if key == "logs":
        return logs_pb.ExportLogsServiceResponse(partial_success=logs_pb.ExportLogsPartialSuccess(
            rejected_log_records=rejected, error_message=message)).SerializeToString()
    return metrics_pb.ExportMetricsServiceResponse(partial_success=metrics_pb.ExportMetricsPartialSuccess(
        rejected_data_points=rejected, error_message=message)).SerializeToString()


PARTIAL_MESSAGE = "sink: {n} records over the per-request limit were dropped"


def make_server(host: str, port: int, counts: Counts, status: int = 200, retry_after: str | None = None,
                partial_reject: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            tenant = self.headers.get("X-Scope-OrgID") or _user(self.headers.get("Authorization", ""))
            try:
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                key, n = count_items(self.path, body)
            except Exception:  # noqa: BLE001 - a malformed body is counted, then refused
                counts.add(tenant, "bad", 1)
                self._answer(400, b"malformed OTLP")
                return
            counts.add(tenant, f"offered_{key}", n)
            counts.add(tenant, f"answered:{status}", 1)
            if status != 200:
                self._answer(status, b"rejected by the sink\n", "text/plain",
                             {"Retry-After": retry_after} if retry_after is not None else {})
                return
            rejected = min(n, partial_reject)
            counts.add(tenant, key, n - rejected)
            counts.add(tenant, "requests", 1)
            self._answer(200, partial_response(key, rejected, PARTIAL_MESSAGE.format(n=rejected)) if rejected else b"")

        def do_GET(self):  # noqa: N802
            if self.path == "/counts":
                self._answer(200, json.dumps(counts.snapshot()).encode(), "application/json")
            else:
                self._answer(404, b"")

        def _answer(self, code: int, payload: bytes, ctype: str = "application/x-protobuf",
                    headers: dict | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def _user(authorization: str) -> str:
    if authorization.startswith("Basic "):
        try:
            return base64.b64decode(authorization[6:]).decode().split(":", 1)[0]
        except ValueError:
            pass
    return "-"


class Sink:
    """A sink listening on one or more loopback ports, sharing one set of counts."""

    def __init__(self, ports: list[int], host: str = "127.0.0.1", status: int = 200, retry_after: str | None = None,
                 partial_reject: int = 0) -> None:
        self.counts = Counts()
        self.servers = [make_server(host, p, self.counts, status, retry_after, partial_reject) for p in ports]
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self.servers]

    def start(self) -> "Sink":
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()


def serve_forever(ports: int | list[int], host: str = "127.0.0.1") -> None:
    """Run a sink in this process until killed. Benchmarks start it in a process of its own,
    so that decoding requests never waits for the generator's interpreter lock (or the other
    way round): the sink stands in for a backend that has no such lock."""
    ports = [ports] if isinstance(ports, int) else list(ports)
    sink = Sink(ports[1:], host=host).start() if len(ports) > 1 else None
    server = make_server(host, ports[0], sink.counts if sink else Counts())
    if sink is not None:
        sink.servers.append(server)
    server.serve_forever()
