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


class BodyMaker:
    """Log bodies of one service, in one shape, padded with more varying fields up to
    ``body_bytes`` (as real lines carry user agents, trace ids and the like)."""

    def __init__(self, service: str, rng: random.Random, shape: str = "mixed", body_bytes: int = 0) -> None:
        if shape not in SHAPE_MIX:
            raise ValueError(f"unknown log shape {shape!r}")
        self.service, self.rng, self.body_bytes = service, rng, body_bytes
        self.p_text, self.p_json = SHAPE_MIX[shape]
        self.hosts = [f"{service}-{rng.getrandbits(24):06x}" for _ in range(4)]

    def make(self) -> tuple[int, str, str, str, str, int]:
        r = self.rng.random()
        if r < self.p_text:
            out = self._text()
        elif r < self.p_text + self.p_json:
            out = self._json()
        else:
            out = self._stacktrace()
        body = out[2]
        if len(body) < self.body_bytes:
            if body[0] == "{":  # a JSON line stays JSON: the padding goes in as more keys
                body = body[:-1] + self._pad("", json=True) + "}"
            else:
                body = self._pad(body)
            out = (out[0], out[1], body, out[3], out[4], out[5])
        return out

    # ---------------------------------------------------------------- shapes

    def _request(self) -> tuple[tuple[int, str], str, str, int, int]:
        rng = self.rng
        rnd = rng.random
        method, route = METHODS[int(rnd() * 6)], ROUTES[int(rnd() * 6)]
        if rng.random() < 0.9:
            sev, status = (SEV_INFO if rng.random() < 0.9 else SEV_DEBUG), 200 if method == "GET" else 201
        else:
            status = ERROR_STATUSES[int(rnd() * 4)]
            sev = SEV_ERROR if status >= 500 else SEV_WARN
        return sev, method, route, status, int(rng.expovariate(1 / 40)) + 1

    def _text(self) -> tuple[int, str, str, str, str, int]:
        rng = self.rng
        rnd = rng.random
        sev, method, route, status, ms = self._request()
        kind = int(rnd() * 5)
        if kind < 2:
            path = route.replace("{id}", str(1 + int(rnd() * 9999999)))
            body = (f"{method} {path} {status} {ms}ms bytes={64 + int(rnd() * 89936)} service={self.service} "
                    f"request_id={rng.getrandbits(64):016x} client=10.{int(rnd() * 256)}.{int(rnd() * 256)}."
                    f"{1 + int(rnd() * 254)}")
        elif kind == 2:
            body = (f"order {int(rnd() * 10**9)} placed for customer c{int(rnd() * 10**6)}: "
                    f"{1 + int(rnd() * 39)} items, total {100 + int(rnd() * 999900) / 100:.2f} EUR")
        elif kind == 3:
            body = (f"db query on {TABLES[int(rnd() * 6)]} took {ms}ms rows={int(rnd() * 5000)} "
                    f"pool_wait={int(rnd() * 30)}ms conn={int(rnd() * 64)}")
        elif status >= 400:
            body = (f"payment p{rng.getrandbits(40):010x} declined: {REASONS[int(rnd() * 5)]} "
                    f"(attempt {1 + int(rnd() * 3)}, region {REGIONS[int(rnd() * 4)]})")
        else:
            body = (f"cache miss for key cart:{int(rnd() * 10**7)} in {REGIONS[int(rnd() * 4)]}, "
                    f"fetched in {ms}ms")
        return sev[0], sev[1], body, method, route, status

    def _json(self) -> tuple[int, str, str, str, str, int]:
        rng = self.rng
        rnd = rng.random
        sev, method, route, status, ms = self._request()
        path = route.replace("{id}", str(1 + int(rnd() * 9999999)))
        body = (f'{{"level":"{sev[1].lower()}","logger":"{LOGGERS[int(rnd() * 5)]}","msg":"request finished",'
                f'"method":"{method}","path":"{path}","status":{status},"duration_ms":{ms}.{int(rnd() * 1000):03d},'
                f'"user_id":"u{int(rnd() * 10**6)}","trace_id":"{rng.getrandbits(128):032x}",'
                f'"span_id":"{rng.getrandbits(64):016x}","host":"{self.hosts[int(rnd() * 4)]}"}}')
        return sev[0], sev[1], body, method, route, status

    def _stacktrace(self) -> tuple[int, str, str, str, str, int]:
        rng = self.rng
        rnd = rng.random
        method, route = METHODS[int(rnd() * 6)], ROUTES[int(rnd() * 6)]
        exc, text = EXCEPTIONS[int(rnd() * len(EXCEPTIONS))]
        message = text.format(host=self.hosts[int(rnd() * 4)], ms=1000 + int(rnd() * 29000), id=int(rnd() * 10**7),
                              n=-5 + int(rnd() * 5), table=TABLES[int(rnd() * 6)])
        lines = [f"unhandled error in {method} {route} request_id={rng.getrandbits(64):016x}",
                 "Traceback (most recent call last):"]
        for _ in range(3 + int(rnd() * 7)):
            file, func = FRAMES[int(rnd() * len(FRAMES))]
            lines.append(f'  File "{file}", line {20 + int(rnd() * 880)}, in {func}')
        lines.append(f"{exc}: {message}")
        return SEV_ERROR[0], SEV_ERROR[1], "\n".join(lines), method, route, 500

    def _pad(self, body: str, json: bool = False) -> str:
        rng = self.rng
        rnd = rng.random
        extra = [body]
        size = len(body) if not json else self.body_bytes // 2  # the JSON line itself is about half
        n = 0
        while size < self.body_bytes:
            k = int(rnd() * 4)
            n += 1
            if k == 0:
                value = ("trace_id", f"{rng.getrandbits(128):032x}")
            elif k == 1:
                value = ("user_agent", AGENTS[int(rnd() * len(AGENTS))])
            elif k == 2:
                value = ("pid", str(1 + int(rnd() * 65535)))
            else:
                value = ("session", f"s{rng.getrandbits(48):012x}")
            piece = f',"{value[0]}_{n}":"{value[1]}"' if json else f' {value[0]}="{value[1]}"'
            extra.append(piece)
            size += len(piece)
        return "".join(extra)
