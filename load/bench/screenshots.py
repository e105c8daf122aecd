"""Look at the dashboards as a user does: one screenshot of each provisioned dashboard, with data.

    python load/bench/screenshots.py [--warmup 240] [--out load/bench/results/screenshots]

1. The stack starts as processes (``obskit.testing.start_process_stack``: the default spec, the
   process runtime, a free block of loopback ports, a private folder). Needs loki, mimir,
   grafana (with its frontend built into the Grafana home's ``public/``), otelcol-obskit,
   versitygw, nginx, postgres and Debian's ``chromium`` on PATH.
2. Data flows for ``--warmup`` seconds: an application (the OpenTelemetry SDK) sends an HTTP
   server histogram and log lines (one in ten a 500 / ERROR) through the collector every half
   second, a few requests with a wrong password reach the gateway (so its 401 answers exist),
   and the collector scrapes the stack itself.
3. A Viewer user is made through Grafana's admin API; headless Chromium logs in with that
   user's session cookie (``POST /login``, the form's own endpoint) and opens each dashboard in
   kiosk mode at a fixed width, tall enough to show every panel at once (panels outside the
   viewport are never queried), over the last ``--range`` minutes.
4. One PNG per dashboard and ``shots.md`` (what was shot, how, and per panel what Grafana's
   ``/api/ds/query`` returned as the viewer, Grafana's warnings) go to ``--out``. The stack is torn down.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (file
descriptors 3 and 4), so nothing beyond the standard library is needed for it.
Everything runs on 127.0.0.1; the load is bounded (two messages a second).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
APP = "checkout"
GRID_ROW_PX = 30  # Grafana's grid: one gridPos unit of height is 30 px (plus an 8 px margin)


# --------------------------------------------------------------------------- data


class Trickle:
    """An application: an HTTP server histogram and log lines every half second, through the
    collector's OTLP/HTTP intake (the first tenant)."""

    def __init__(self, otlp_http: str) -> None:
        from opentelemetry._logs import LogRecord, SeverityNumber
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create({"service.name": APP, "service.instance.id": f"{APP}-1"})
        self.logs = LoggerProvider(resource=resource)
        self.logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{otlp_http}/v1/logs"),
                                                                   schedule_delay_millis=500))
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{otlp_http}/v1/metrics"),
                                               export_interval_millis=5000)
        self.metrics = MeterProvider(resource=resource, metric_readers=[reader])
        self.logger = self.logs.get_logger(APP)
        self.histogram = self.metrics.get_meter(APP).create_histogram(
            "http.server.request.duration", unit="s",
            # The semantic conventions' buckets (what HTTP instrumentations use); the SDK's
            # default buckets are for milliseconds and would put every request below 5 s.
            explicit_bucket_boundaries_advisory=[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])
        self._LogRecord, self._sev = LogRecord, SeverityNumber
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        routes = ("/checkout", "/cart", "/health")
        while not self.stop.is_set():
            i += 1
            status = 500 if i % 10 == 0 else 200
            route = routes[i % len(routes)]
            method = "POST" if route == "/checkout" else "GET"
            attrs = {"http.request.method": method, "http.route": route, "http.response.status_code": status}
            self.histogram.record(0.02 + (i % 9) / 50, attrs)
            self.logger.emit(self._LogRecord(
                timestamp=time.time_ns(), body=f"{method} {route} order {i} answered {status}",
                severity_text="ERROR" if status == 500 else "INFO",
                severity_number=self._sev.ERROR if status == 500 else self._sev.INFO,
                attributes={"order": i}))
            self.stop.wait(0.5)

    def __enter__(self) -> "Trickle":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)
        for p in (self.metrics, self.logs):
            p.shutdown()


def wrong_password_requests(ep, n: int = 5) -> None:
    """A client with a wrong password: the gateway answers 401 (what its status panel shows)."""
    s = ep.session()
    for _ in range(n):
        try:
            s.get(f"{ep.gateway}/loki/api/v1/labels", auth=(ep.tenants[0], "wrong-password"), timeout=10)
        except requests.RequestException:
            pass


# --------------------------------------------------------------------------- Chromium (CDP over a pipe)


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe: commands are JSON texts ended
    by a NUL byte, written to its fd 3; answers and events come back on its fd 4."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        args = ["--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--ignore-certificate-errors", "--hide-scrollbars", "--no-first-run", "--mute-audio",
                "--disable-dev-shm-usage", "--force-device-scale-factor=1", f"--user-data-dir={profile}",
                "about:blank"]
        self.proc = subprocess.Popen(
            ["sh", "-c", f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w}', exe, *args],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, *, browser: bool = False) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not browser:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read()
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable")

    def evaluate(self, expr: str):
        return self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close", browser=True)
        except Exception:  # noqa: BLE001 - it may be gone already
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_child)
        os.close(self._from_child)


# Grafana's own markers of a panel still loading (its loading bar) or of the app not being up.
PENDING_JS = """(() => {
  const busy = document.querySelectorAll('[aria-label="Panel loading bar"], [data-testid*="oading"], .preloader');
  return busy.length;
})()"""

PANELS_JS = """(() => Array.from(document.querySelectorAll('[data-viz-panel-key], [data-panelid]')).map(p => {
  const title = (p.querySelector('h2') || {}).textContent || '';
  return {title, text: p.innerText.slice(0, 400)};
}))()"""


def dashboard_height(dash: dict) -> int:
    bottom = 0
    for p in dash.get("panels", []):
        g = p.get("gridPos", {})
        bottom = max(bottom, g.get("y", 0) + g.get("h", 0))
    return bottom * (GRID_ROW_PX + 8) + 160


def shoot(chrome: Chromium, url: str, out: Path, width: int, height: int, settle: float) -> dict:
    chrome.call("Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    chrome.call("Page.navigate", {"url": url})
    deadline = time.monotonic() + 60
    time.sleep(3)
    while time.monotonic() < deadline:
        ready = chrome.evaluate("document.readyState") == "complete"
        if ready and chrome.evaluate(PENDING_JS) == 0:
            break
        time.sleep(1)
    time.sleep(settle)  # let the last queries draw, and the legends lay out
    panels = chrome.evaluate(PANELS_JS) or []
    shot = chrome.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
    out.write_bytes(base64.b64decode(shot["data"]))
    return {"url": chrome.evaluate("location.href"), "panels": panels}


# --------------------------------------------------------------------------- Grafana


def make_viewer(ep) -> tuple[str, str]:
    import secrets

    login, password = "screenshot-viewer", secrets.token_urlsafe(18)
    s = ep.session()
    s.auth = ep.grafana_admin
    r = s.post(f"{ep.grafana}/api/admin/users", timeout=15,
               json={"name": login, "login": login, "password": password, "email": "viewer@screenshots.invalid"})
    r.raise_for_status()
    return login, password


def session_cookie(ep, login: str, password: str) -> dict:
    s = ep.session()
    r = s.post(f"{ep.grafana}/login", json={"user": login, "password": password}, timeout=15)
    r.raise_for_status()
    for c in s.cookies:
        if c.name == "grafana_session":
            # By URL, not domain: Python's cookie jar files a "localhost" cookie as "localhost.local".
            return {"name": c.name, "value": c.value, "url": ep.grafana + "/", "path": "/",
                    "httpOnly": True, "secure": ep.grafana.startswith("https")}
    raise RuntimeError("Grafana's /login set no grafana_session cookie")


def panel_results(ep, user, dash: dict, minutes: int) -> list[tuple[str, str]]:
    """Per panel: how many frames with values Grafana's /api/ds/query gave the viewer."""
    s = ep.session()
    s.auth = user
    now = int(time.time() * 1000)
    ds_vars = {"${metrics}": "obskit-apps-metrics", "${logs}": "obskit-apps-logs"}
    rows = []
    for p in dash.get("panels", []):
        targets = p.get("targets") or []
        if not targets:
            continue
        uid = (p.get("datasource") or {}).get("uid", "")
        uid = ds_vars.get(uid, uid)
        queries = []
        for t in targets:
            expr = (t.get("expr") or "").replace("$service_name", APP).replace("${service_name}", APP)
            q = {"refId": t.get("refId", "A"), "datasource": {"uid": uid}, "expr": expr,
                 "intervalMs": 15000, "maxDataPoints": 400}
            q |= {"range": True, "instant": False} if "loki" not in uid and "logs" not in uid else \
                {"queryType": "range", "maxLines": 100}
            queries.append(q)
        r = s.post(f"{ep.grafana}/api/ds/query", timeout=60,
                   json={"queries": queries, "from": str(now - minutes * 60_000), "to": str(now)})
        if r.status_code >= 400 and r.status_code != 207:
            rows.append((p.get("title", ""), f"HTTP {r.status_code}"))
            continue
        series = 0
        for res in (r.json().get("results") or {}).values():
            for frame in res.get("frames") or []:
                values = (frame.get("data") or {}).get("values") or []
                if values and any(len(v) for v in values):
                    series += 1
        rows.append((p.get("title", ""), f"{series} series with data" if series else "no data"))
    return rows


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warmup", type=float, default=240, help="seconds of data before the first screenshot")
    ap.add_argument("--range", type=int, default=15, dest="minutes", help="dashboard time range, minutes back")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--settle", type=float, default=4, help="seconds after the last panel loaded")
    ap.add_argument("--out", default=str(HERE / "results" / "screenshots"))
    args = ap.parse_args()

    missing = [p for p in ("chromium", "grafana", "mimir", "loki") if shutil.which(p) is None]
    if missing:
        print(f"not on PATH: {', '.join(missing)}", file=sys.stderr)
        return 3
    from obskit.testing import start_process_stack

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stack = start_process_stack()
    profile = Path(tempfile.mkdtemp(prefix="obskit-chromium-"))
    try:
        ep = stack.endpoints
        if not ep.has_grafana or not ep.has_mimir:
            print("the stack came up without Grafana or Mimir", file=sys.stderr)
            return 3
        otlp = f"http://127.0.0.1:{stack._runtime.processes.ports['otelcol']['http']}"
        dash_dir = stack.workdir / ".obskit" / "run" / stack.env_name / "configs" / "grafana" / "dashboards"
        if not dash_dir.is_dir():
            dash_dir = next(stack.workdir.rglob("configs/grafana/dashboards"))
        dashboards = sorted(dash_dir.rglob("*.json"))
        with Trickle(otlp):
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.warmup:
                wrong_password_requests(ep, 2)
                time.sleep(15)
            user = make_viewer(ep)
            cookie = session_cookie(ep, *user)
            chrome = Chromium(shutil.which("chromium"), profile)
            shots = []
            try:
                chrome.open_page()
                chrome.call("Network.setCookie", cookie)
                for path in dashboards:
                    dash = json.loads(path.read_text())
                    url = f"{ep.grafana}/d/{dash['uid']}?orgId=1&kiosk&from=now-{args.minutes}m&to=now"
                    png = out / f"{path.stem}.png"
                    seen = shoot(chrome, url, png, args.width, dashboard_height(dash), args.settle)
                    shots.append((path.stem, dash, png, seen, panel_results(ep, user, dash, args.minutes)))
                    print(f"{png}  ({seen['url']})")
            finally:
                chrome.close()
        log = stack._runtime.processes.log_path("grafana").read_text(errors="replace").splitlines()
        problems = [line for line in log if any(f'"level":"{lv}"' in line for lv in ("warn", "error", "eror", "crit"))]
        version = subprocess.run([shutil.which("chromium"), "--version"], capture_output=True, text=True).stdout.strip()
        gversion = ep.session().get(f"{ep.grafana}/api/health", timeout=10).json().get("version", "?")
        lines = [
            "# Dashboards as a user sees them",
            "",
            f"Shot {time.strftime('%Y-%m-%d')} with `python load/bench/screenshots.py --warmup {args.warmup:g} "
            f"--range {args.minutes}` on {os.cpu_count()} cores ({platform.machine()}): Grafana {gversion} "
            f"(server and frontend built from the 12.4.0 source), {version}, headless, "
            f"{args.width} px wide, kiosk mode, last {args.minutes} minutes, logged in as a Viewer.",
            "",
            f"Data: the process runtime with the default spec; an application `{APP}` sent an HTTP server "
            f"histogram and a log line every 0.5 s (one in ten a 500/ERROR) through the collector for "
            f"{args.warmup:g} s before the first shot; two requests with a wrong password reached the gateway "
            "every 15 s; the collector scraped the stack.",
            "",
            f"Grafana's log: {len(log)} lines, {len(problems)} at warn level or above" + (":" if problems else "."),
            "",
            *[f"    {line[:300]}" for line in problems[:20]],
            "",
        ]
        for stem, dash, png, seen, rows in shots:
            lines += [f"## {dash.get('title', stem)} (`{stem}.json`)", "", f"![{stem}]({png.name})", ""]
            if rows:
                lines += ["| panel | /api/ds/query as the viewer |", "|---|---|"]
                lines += [f"| {t} | {r} |" for t, r in rows]
                lines.append("")
        (out / "shots.md").write_text("\n".join(lines) + "\n")
        print(out / "shots.md")
        return 0
    finally:
        stack.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
