"""A local webhook receiver for Grafana's contact points: a real HTTP server on 127.0.0.1.

It records every request (arrival time, path, JSON body). Paths under /fail answer 500, so
a test can make a delivery fail on purpose; every other path answers 200.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivery:
    at: float  # time.monotonic() on arrival
    path: str
    body: dict


class WebhookReceiver:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with receiver._cond:
                    receiver.deliveries.append(Delivery(time.monotonic(), self.path, body))
                    receiver._cond.notify_all()
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, predicate, timeout: float) -> Delivery | None:
        """The first delivery (old or new) that satisfies predicate, or None after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for d in self.deliveries:
                    if predicate(d):
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def alerts_named(delivery: Delivery, name: str, status: str) -> list[dict]:
    """The alerts of one webhook payload with that alertname and status."""
    return [a for a in delivery.body.get("alerts", [])
            if a.get("labels", {}).get("alertname") == name and a.get("status") == status]
