"""A new user's first hour (issue 23): the hints obskit prints are right for the environment
at hand, and the small things a first session runs into behave. Each runs the real
`obskit` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from conftest import obskit_cmd


def test_init_leaves_the_replication_factor_to_follow_replicas(run_obskit, tmp_path):
    run_obskit("init", check=True)
    spec = yaml.safe_load((tmp_path / "obskit.yaml").read_text())
    assert "replication_factor" not in spec["mimir"]
    # What the README and every --help suggest works on the starter spec.
    run_obskit("render", "--set", "mimir.replicas=1", check=True)
    run_obskit("config", "show", env={"OBSKIT__MIMIR__REPLICAS": "1"}, check=True)


def test_init_into_a_folder_it_cannot_write_is_a_usage_error(run_obskit):
    proc = run_obskit("init", "--force", "--path", "/sys/obskit-test/obskit.yaml")
    assert proc.returncode == 2, proc.stderr
    assert "cannot write /sys/obskit-test/obskit.yaml" in proc.stderr and "unexpected" not in proc.stderr
    proc = run_obskit("init", "--force", "--path", "/proc/obskit.yaml")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_init_elsewhere_suggests_a_render_that_reads_that_file(run_obskit, tmp_path):
    proc = run_obskit("init", "--path", "sub/x.yaml", check=True)
    assert "`obskit --spec sub/x.yaml render`" in proc.stdout, proc.stdout
    # The suggestion, run as written, renders that file.
    run_obskit("--spec", "sub/x.yaml", "render", check=True)
    plain = run_obskit("init", "--path", "obskit.yaml", check=True)
    assert "Next: `obskit render`" in plain.stdout


def test_piping_into_head_exits_0_quietly(tmp_path):
    (tmp_path / "obskit.yaml").write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSKIT")}
    cmd = " ".join(obskit_cmd())
    proc = subprocess.run(f"set -o pipefail; {cmd} config show --json | head -c 0", shell=True,
                          executable="/bin/bash", cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_images_is_refused_by_the_process_runtime(run_obskit):
    proc = run_obskit("up", "--runtime", "process", "--images", "--no-verify")
    assert proc.returncode == 2, proc.stderr
    assert "--images" in proc.stderr and "process" in proc.stderr


def test_secrets_hints_carry_the_environment(run_obskit, tmp_path):
    proc = run_obskit("secrets", "show", "--env", "process")
    assert proc.returncode == 2 and "`obskit up --env process`" in proc.stderr
    secrets = tmp_path / ".obskit" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "process.json").write_text(json.dumps({"grafana-admin-password": "x"}))
    proc = run_obskit("secrets", "show", "--env", "process", check=True)
    assert "`obskit secrets show NAME --env process`" in proc.stdout
    proc = run_obskit("secrets", "show", "nothing-like-it", "--env", "process")
    assert "`obskit secrets show --env process`" in proc.stderr


def test_check_json_is_one_object_on_failure_too(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text("environments:\n  local: {kind: compose}\n")
    proc = run_obskit("check", "--json", "--env", "nowhere")
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert data["ok"] is False and "nowhere" in data["error"]


def test_env_vars_point_an_otel_sdk_at_the_stack_without_printing_the_credential(run_obskit, tmp_path):
    """`eval "$(obskit env-vars --env NAME)"`, then an app's OpenTelemetry SDK, configured by
    nothing but the environment, sends to the gateway with the tenant's writer credential
    and trusts the stack's CA. The output itself holds no secret."""
    from obskit.project import Project
    from obskit.secrets import SecretStore
    from obskit.spec.load import load_spec
    from obskit import stack

    (tmp_path / "obskit.yaml").write_text("{}\n")
    resolved = load_spec(str(tmp_path / "obskit.yaml"), environ={})
    project = Project.of(resolved)
    values, _ = SecretStore(project.state_dir, "process").ensure(project.spec)  # what `obskit up` does first
    run_obskit("render", "--env", "process", check=True)
    ep = stack.endpoints(project, "process")
    out = run_obskit("env-vars", "--runtime", "process", check=True).stdout
    assert not any(v in out for k, v in values.items() if "password" in k), "a secret was printed"
    # A stand-in for the gateway on its port, with the stack's own certificate: it records
    # what the SDK sends. The app below is configured by the environment alone.
    import http.server
    import ssl
    import threading
    from urllib.parse import urlsplit

    seen: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append((self.path, self.headers.get("Authorization", "")))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    (tmp_path / "tls.crt").write_text(values["gateway-tls-cert"])
    (tmp_path / "tls.key").write_text(values["gateway-tls-key"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", urlsplit(ep.gateway).port), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app = (
        "from opentelemetry._logs import LogRecord\n"
        "from opentelemetry.sdk._logs import LoggerProvider\n"
        "from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor\n"
        "from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader\n"
        "from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter\n"
        "p = LoggerProvider(); p.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter()))\n"
        "p.get_logger('app').emit(LogRecord(body='hello')); p.shutdown()\n"
        "r = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=3600000)\n"
        "m = MeterProvider(metric_readers=[r]); m.get_meter('app').create_counter('c').add(1)\n"
        "r.force_flush(); m.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if not (k.startswith("OBSKIT") or k.startswith("OTEL"))}
    env["PATH"] = os.path.dirname(obskit_cmd()[0]) + os.pathsep + env["PATH"]  # `obskit` as a user has it
    env["REQUESTS_CA_BUNDLE"] = "/etc/ssl/certs/ca-certificates.crt"
    import sys

    # With REQUESTS_CA_BUNDLE set, requests ignores the SDK's CA: the output says so, and how.
    hint = subprocess.run([*obskit_cmd(), "env-vars", "--env", "process"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60).stdout
    assert "ignores OTEL_EXPORTER_OTLP_CERTIFICATE" in hint and "env -u REQUESTS_CA_BUNDLE" in hint
    try:
        proc = subprocess.run(["bash", "-c", f'eval "$(obskit env-vars --env process)" && '
                                             f'env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE {sys.executable} -c "$0"', app],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert proc.returncode == 0 and "Failed" not in proc.stderr, proc.stderr
    auth = ep.auth_header(ep.tenants[0], "write")
    assert set(seen) == {("/otlp/v1/logs", auth), ("/otlp/v1/metrics", auth)}, seen


def test_config_show_credits_only_what_the_file_wrote_and_shows_for_as_written(run_obskit, tmp_path):
    (tmp_path / "obskit.yaml").write_text(
        "tenants:\n  - name: apps\n  - name: web\n    limits: {burst: 7}\n"
        "alerting:\n  rules:\n    - name: CheckoutErrorsHigh\n      tenant: web\n      language: logql\n"
        "      expr: sum(count_over_time({service_name=\"checkout\"} |= \"ERROR\" [5m]))\n"
        "      condition: gt\n      threshold: 10\n      for: 10m\n      summary: Checkout errors\n"
        "      severity: critical\n      team: payments\n      description: Errors.\n"
        "      runbook_url: https://runbooks.example.com/checkout\n")
    rows = {r["key"]: r for r in json.loads(run_obskit("config", "show", "--json", check=True).stdout)["values"]}
    file = "obskit.yaml:"
    assert rows["tenants[1].limits.burst"]["origin"].startswith(file)
    assert rows["tenants[1].name"]["origin"].startswith(file)
    # Written in the file's list item: no. A default, whatever the list around it.
    assert rows["tenants[1].limits.requests_per_second"]["origin"] == "default"
    assert rows["alerting.rules[0].interval"]["origin"] == "default"
    assert rows["alerting.rules[0].for"]["value"] == "10m" and rows["alerting.rules[0].for"]["origin"].startswith(file)
    assert not any(k.endswith("for_") or k.endswith("continue_") for k in rows)
