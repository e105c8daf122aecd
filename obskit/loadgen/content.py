"""What generated log lines say: templated text, JSON lines and stack traces, with the
fields that differ from line to line in real logs (ids, durations, sizes, trace ids,
addresses, line numbers) drawn per line, so that compression sees realistic variety.

``BodyMaker.make()`` returns (severity number, severity text, body, method, route, status);
the record's attributes come from the last three.
"""

from __future__ import annotations

import random

SEV_INFO, SEV_WARN, SEV_ERROR, SEV_DEBUG = (9, "INFO"), (13, "WARN"), (17, "ERROR"), (5, "DEBUG")
ROUTES = ("/api/orders", "/api/orders/{id}", "/api/cart", "/api/checkout", "/api/users/{id}", "/health")
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
ERROR_STATUSES = (404, 429, 500, 503)
TABLES = ("orders", "order_items", "customers", "payments", "inventory", "sessions")
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "ap-south-1")
REASONS = ("insufficient_funds", "card_expired", "do_not_honor", "fraud_suspected", "limit_exceeded")
AGENTS = ("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "okhttp/4.12.0", "python-requests/2.32.3",
          "Go-http-client/2.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) Safari/604.1", "curl/8.8.0")
LOGGERS = ("orders.api", "orders.repository", "payments.client", "cart.service", "auth.middleware")
EXCEPTIONS = (
    ("TimeoutError", "upstream {host} did not answer within {ms} ms"),
    ("KeyError", "'customer_{id}'"),
    ("ValueError", "invalid quantity {n} for sku SKU-{id}"),
    ("ConnectionResetError", "[Errno 104] Connection reset by peer ({host})"),
    ("psycopg.errors.DeadlockDetected", "deadlock detected on relation {table}, process {id}"),
)
FRAMES = (
    ("/app/orders/api.py", "create_order"), ("/app/orders/service.py", "place"),
    ("/app/orders/repository.py", "insert"), ("/app/payments/client.py", "charge"),
    ("/usr/lib/python3.12/site-packages/httpx/_client.py", "send"),
    ("/usr/lib/python3.12/site-packages/sqlalchemy/engine/base.py", "_execute_context"),
    ("/app/cart/service.py", "reserve"), ("/app/common/retry.py", "wrapper"),
)
SHAPE_MIX = {"text": (1.0, 0.0), "json": (0.0, 1.0), "stacktrace": (0.0, 0.0), "mixed": (0.75, 0.15)}


# Fields cut from one 64-bit random number per line (a C call), not drawn one by one.
_OCTETS = [str(i) for i in range(256)]


class BodyMaker:
    """Log bodies of one service, in one shape, padded with more varying fields up to
    ``body_bytes`` (as real lines carry user agents, trace ids and the like)."""

    def __init__(self, service: str, rng: random.Random, shape: str = "mixed", body_bytes: int = 0) -> None:
        if shape not in SHAPE_MIX:
            raise ValueError(f"unknown log shape {shape!r}")
        self.service, self.rng, self.body_bytes = service, rng, body_bytes
        p_text, p_json = SHAPE_MIX[shape]
        # Which shape each line takes, by the top 10 bits of its random number.
        self.kinds = [0 if i < p_text * 1024 else 1 if i < (p_text + p_json) * 1024 else 2 for i in range(1024)]
        self.hosts = [f"{service}-{rng.getrandbits(24):06x}" for _ in range(4)]
        # Request durations: a fixed sample of an exponential distribution (mean 40 ms).
        self.durations = [int(rng.expovariate(1 / 40)) + 1 for _ in range(1024)]
        self.makers = (self._text, self._json, self._stacktrace)

    def make(self) -> tuple[int, str, str, str, str, int]:
        bits = self.rng.getrandbits(64)
        out = self.makers[self.kinds[bits >> 54]](bits)
        body = out[2]
        if len(body) < self.body_bytes:
            if body[0] == "{":  # a JSON line stays JSON: the padding goes in as more keys
                body = body[:-1] + self._pad("", json=True) + "}"
            else:
                body = self._pad(body)
            out = (out[0], out[1], body, out[3], out[4], out[5])
        return out

    # ---------------------------------------------------------------- shapes

    def _request(self, bits: int) -> tuple[tuple[int, str], str, str, int, int]:
        method, route = METHODS[bits % 6], ROUTES[(bits >> 3) % 6]
        roll = (bits >> 6) & 1023
        if roll < 922:  # 90% fine
            sev, status = (SEV_INFO if roll < 830 else SEV_DEBUG), 200 if method == "GET" else 201
        else:
            status = ERROR_STATUSES[roll & 3]
            sev = SEV_ERROR if status >= 500 else SEV_WARN
        return sev, method, route, status, self.durations[(bits >> 16) & 1023]

    def _text(self, bits: int) -> tuple[int, str, str, str, str, int]:
        rng = self.rng
        sev, method, route, status, ms = self._request(bits)
        kind = (bits >> 26) % 5
        more = rng.getrandbits(64)
        if kind < 2:
            path = route.replace("{id}", str(more & 0x7FFFFF))
            body = (f"{method} {path} {status} {ms}ms bytes={(more >> 23) & 0xFFFF} service={self.service} "
                    f"request_id={rng.getrandbits(64):016x} client=10.{_OCTETS[(more >> 39) & 255]}."
                    f"{_OCTETS[(more >> 47) & 255]}.{_OCTETS[(more >> 55) & 255]}")
        elif kind == 2:
            body = (f"order {more & 0x3FFFFFFF} placed for customer c{(more >> 30) & 0xFFFFF}: "
                    f"{1 + ((more >> 50) & 31)} items, total {((more >> 20) & 0xFFFFF) / 100:.2f} EUR")
        elif kind == 3:
            body = (f"db query on {TABLES[more % 6]} took {ms}ms rows={(more >> 3) & 4095} "
                    f"pool_wait={(more >> 15) & 31}ms conn={(more >> 20) & 63}")
        elif status >= 400:
            body = (f"payment p{more & 0xFFFFFFFFFF:010x} declined: {REASONS[(more >> 40) % 5]} "
                    f"(attempt {1 + ((more >> 44) % 3)}, region {REGIONS[(more >> 48) & 3]})")
        else:
            body = (f"cache miss for key cart:{more & 0xFFFFFF} in {REGIONS[(more >> 24) & 3]}, "
                    f"fetched in {ms}ms")
        return sev[0], sev[1], body, method, route, status

    def _json(self, bits: int) -> tuple[int, str, str, str, str, int]:
        rng = self.rng
        sev, method, route, status, ms = self._request(bits)
        more = rng.getrandbits(64)
        path = route.replace("{id}", str(more & 0x7FFFFF))
        body = (f'{{"level":"{sev[1].lower()}","logger":"{LOGGERS[(bits >> 26) % 5]}","msg":"request finished",'
                f'"method":"{method}","path":"{path}","status":{status},"duration_ms":{ms}.{(more >> 23) % 1000:03d},'
                f'"user_id":"u{(more >> 33) & 0xFFFFF}","trace_id":"{rng.getrandbits(128):032x}",'
                f'"span_id":"{rng.getrandbits(64):016x}","host":"{self.hosts[(more >> 53) & 3]}"}}')
        return sev[0], sev[1], body, method, route, status

    def _stacktrace(self, bits: int) -> tuple[int, str, str, str, str, int]:
        rng = self.rng
        method, route = METHODS[bits % 6], ROUTES[(bits >> 3) % 6]
        exc, text = EXCEPTIONS[(bits >> 6) % len(EXCEPTIONS)]
        more = rng.getrandbits(64)
        message = text.format(host=self.hosts[more & 3], ms=1000 + (more >> 2) % 29000, id=(more >> 17) & 0x7FFFFF,
                              n=-1 - ((more >> 40) % 5), table=TABLES[(more >> 45) % 6])
        lines = [f"unhandled error in {method} {route} request_id={rng.getrandbits(64):016x}",
                 "Traceback (most recent call last):"]
        frames = rng.getrandbits(64)
        for _ in range(3 + (bits >> 10) % 7):
            file, func = FRAMES[frames & 7]
            lines.append(f'  File "{file}", line {20 + (frames >> 3) % 880}, in {func}')
            frames >>= 13
        lines.append(f"{exc}: {message}")
        return SEV_ERROR[0], SEV_ERROR[1], "\n".join(lines), method, route, 500

    def _pad(self, body: str, json: bool = False) -> str:
        rng = self.rng
        extra = [body]
        size = len(body) if not json else self.body_bytes // 2  # the JSON line itself is about half
        n = 0
        while size < self.body_bytes:
            bits = rng.getrandbits(64)
            k = bits & 3
            n += 1
            if k == 0:
                value = ("trace_id", f"{rng.getrandbits(128):032x}")
            elif k == 1:
                value = ("user_agent", AGENTS[(bits >> 2) % len(AGENTS)])
            elif k == 2:
                value = ("pid", str(1 + (bits >> 2) % 65535))
            else:
                value = ("session", f"s{bits >> 16:012x}")
            piece = f',"{value[0]}_{n}":"{value[1]}"' if json else f' {value[0]}="{value[1]}"'
            extra.append(piece)
            size += len(piece)
        return "".join(extra)
