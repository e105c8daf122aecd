"""Stub upstreams for gateway tests: real HTTP servers on 127.0.0.1 that record what
they receive and answer like the service they stand for."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body_size: int


@dataclass
class Stub:
    name: str
    port: int
    seen: list = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    conns: set = field(default_factory=set)

    def start(self) -> "Stub":
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                stub.conns.add(self.connection)

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, len(body)))
                if self.command == "POST" and ("push" in self.path or self.path.endswith(("/logs", "/metrics", "/traces"))):
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                payload = json.dumps({"status": "success", "stub": stub.name, "data": {"result": []}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open (keep-alive) connection: a dead replica."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for conn in list(self.conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass
        self.conns.clear()


class SyslogSink:
    """A UDP listener standing where the collector's syslog intake is."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                data, _ = self.sock.recvfrom(65535)
            except OSError:
                continue
            self.messages.append(data.decode(errors="replace"))

    def stop(self):
        self._stop = True
        self.thread.join(timeout=2)
        self.sock.close()
