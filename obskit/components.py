"""Facts about each component, written once: ports, config paths, start command, how to
tell it is ready, how long it may take to stop, and which program runs it outside a
container.

Every runtime reads these: compose (ports, healthchecks, ``stop_grace_period``), ECS
(container definitions, ``stopTimeout``, security-group ports), the process runtime
(binaries, argv, readiness probes, stop waits) and the images (where configs are copied).
Nothing else compares a component's name against a string to decide such a thing.

This is the lowest module of obskit besides the spec and the errors: it imports neither
rendering nor bindings nor any runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Ports inside a container. They are the same in compose and ECS; the process runtime
# moves them (every service shares 127.0.0.1 there).
PORTS: dict[str, dict[str, int]] = {
    "loki": {"http": 3100, "grpc": 9095, "memberlist": 7946},
    "mimir": {"http": 8080, "grpc": 9095, "memberlist": 7946},
    "otelcol": {"grpc": 4317, "http": 4318, "health": 13133, "telemetry": 8888, "syslog": 5514},
    "grafana": {"http": 3000},
    "gateway": {"https": 8443, "http": 8080},
    "postgres": {"postgres": 5432},
    "object-store": {"s3": 9000, "console": 9001},
}

UDP_PORTS = {("otelcol", "syslog")}

# Where the gateway image's entrypoint writes the rendered nginx config, and the TLS key
# pair and htpasswd file (both written at start, from the environment).
GATEWAY_CONF_DIR = "/etc/nginx/obskit"
GATEWAY_SECRETS_DIR = "/run/obskit"
# Grafana's wrapper entrypoint (configs/grafana/obskit-entrypoint.sh) in its image.
GRAFANA_ENTRYPOINT = "/etc/grafana/obskit-entrypoint.sh"


@dataclass(frozen=True)
class Probe:
    """One HTTP check of readiness, made from outside the process (the host).

    ``tenant``: send ``X-Scope-OrgID`` (a query that needs a tenant). ``accept``: the
    statuses that mean ready.
    """

    port: str
    path: str
    scheme: str = "http"
    tenant: bool = False
    accept: tuple[int, ...] = (200,)


@dataclass(frozen=True)
class Component:
    name: str  # configs/<name>/ and the images: key
    image_key: str
    copies: tuple[tuple[str, str], ...]  # (path under configs/<name>/, path in the container)
    command: tuple[str, ...] = ()
    ports: tuple[tuple[str, int, str], ...] = ()  # (name, port, protocol)
    health_path: str = ""
    health_port: int = 0
    health_scheme: str = "http"
    # A command the image itself can run, or None: then a probe sidecar checks from outside.
    health_command: tuple[str, ...] | None = None
    task_role_buckets: tuple[str, ...] = field(default=())
    # Seconds a runtime waits after SIGTERM before it kills: ECS's stopTimeout, compose's
    # stop_grace_period and the process runtime's stop wait. Loki and Mimir flush to S3 when
    # they stop, and three Mimir replicas leaving together take about 21 s (they wait for a
    # leave broadcast), so they get Fargate's longest.
    stop_timeout: int = 60
    # Outside containers (the process runtime): program names to look for on PATH, in order,
    # and how to get one.
    binaries: tuple[str, ...] = ()
    install_hint: str = ""
    # Ready means usable: every probe passes. Loki answers /ready about 2 s before it can
    # answer a query, so its readiness includes a query.
    probes: tuple[Probe, ...] = ()
    # Seconds a start may take before the runtime gives up on it.
    start_timeout: int = 120
    # The image's own contract, the same wherever the image runs (compose and ECS alike):
    # environment its entrypoint reads, and folders that must exist and be writable when
    # it starts (compose: tmpfs; ECS: task-storage volumes). The process runtime does not
    # run the image's entrypoint.
    image_env: tuple[tuple[str, str], ...] = ()
    scratch_dirs: tuple[str, ...] = ()
    # Replaces the image's entrypoint where obskit must prepare something first (compose's
    # entrypoint, ECS's entryPoint; the same bytes wherever the image runs). Its last word is
    # the image's own entrypoint, which the wrapper execs.
    entrypoint: tuple[str, ...] = ()


def components(grafana_sub_path: str) -> dict[str, Component]:
    def ports(kind: str, *names: str) -> tuple[tuple[str, int, str], ...]:
        return tuple((n, PORTS[kind][n], "udp" if (kind, n) in UDP_PORTS else "tcp") for n in names)

    return {
        "loki": Component(
            "loki", "loki", (("loki.yaml", "/etc/loki/loki.yaml"),),
            ("-config.file=/etc/loki/loki.yaml", "-config.expand-env=true", "-target=all"),
            ports("loki", "http", "grpc", "memberlist"), "/ready", PORTS["loki"]["http"],
            health_command=("/usr/bin/loki", "-health", "-health.url=http://localhost:3100/ready"),
            task_role_buckets=("loki_chunks", "loki_ruler"), stop_timeout=120,
            binaries=("loki",),
            install_hint="build Loki 3.7 (`go build ./cmd/loki` in a Loki checkout) or unpack a release; put `loki` on PATH or set environments.<env>.binaries.loki",
            probes=(Probe("http", "/ready"), Probe("http", "/loki/api/v1/labels", tenant=True)),
        ),
        "mimir": Component(
            "mimir", "mimir", (("mimir.yaml", "/etc/mimir/mimir.yaml"), ("runtime.yaml", "/etc/mimir/runtime.yaml")),
            ("-config.file=/etc/mimir/mimir.yaml", "-config.expand-env=true", "-target=all"),
            ports("mimir", "http", "grpc", "memberlist"), "/ready", PORTS["mimir"]["http"],
            health_command=None,  # distroless, no health flag: probed by a sidecar (never /-/healthy)
            task_role_buckets=("mimir_blocks", "mimir_ruler", "mimir_alertmanager"), stop_timeout=120,
            binaries=("mimir",),
            install_hint="build Mimir 3 (`go build ./cmd/mimir` in a Mimir checkout) or unpack a release; put `mimir` on PATH or set environments.<env>.binaries.mimir",
            probes=(Probe("http", "/ready"),),
        ),
        "otelcol": Component(
            "otelcol", "otelcol", (("config.yaml", "/etc/otelcol/config.yaml"),),
            ("--config=/etc/otelcol/config.yaml",),
            ports("otelcol", "grpc", "http", "health", "telemetry", "syslog"),
            "/", PORTS["otelcol"]["health"], health_command=None,
            binaries=("otelcol-obskit", "otelcol-contrib"),
            install_hint="or, in a checkout of obskit's sources (the wheel has no collector/), build its collector: `collector/build.sh DIR` (Go, modules from the Go module proxy), then put DIR on PATH or set environments.<env>.binaries.otelcol",
            probes=(Probe("health", "/"),),
        ),
        "grafana": Component(
            "grafana", "grafana",
            (("grafana.ini", "/etc/grafana/grafana.ini"), ("provisioning", "/etc/grafana/provisioning"),
             ("dashboards", "/etc/grafana/dashboards"),
             ("obskit-entrypoint.sh", GRAFANA_ENTRYPOINT)),
            (), ports("grafana", "http"), f"{grafana_sub_path}/api/health", PORTS["grafana"]["http"],
            health_command=("curl", "-fsS", "-o", "/dev/null", f"http://localhost:3000{grafana_sub_path}/api/health"),
            binaries=("grafana",),
            install_hint="unpack a Grafana 13 release (its bin/ holds `grafana`); put it on PATH or set environments.<env>.binaries.grafana",
            probes=(Probe("http", f"{grafana_sub_path}/api/health"),),
            # Adds the gateway's CA to what Grafana's own clients trust (alert state history
            # reaches Loki through the gateway), then runs the image's /run.sh.
            entrypoint=("/bin/sh", GRAFANA_ENTRYPOINT, "/run.sh"),
        ),
        "gateway": Component(
            "gateway", "gateway",
            (("templates", "/etc/nginx/templates"),
             ("entrypoint.d/05-obskit-secrets.sh", "/docker-entrypoint.d/05-obskit-secrets.sh"),
             ("entrypoint.d/25-obskit-syslog-target.sh", "/docker-entrypoint.d/25-obskit-syslog-target.sh")),
            ("nginx", "-c", f"{GATEWAY_CONF_DIR}/nginx.conf", "-g", "daemon off;"),
            ports("gateway", "https", "http"), "/nginx-health", PORTS["gateway"]["https"], "https",
            health_command=("curl", "-fsSk", "-o", "/dev/null", "https://localhost:8443/nginx-health"),
            stop_timeout=30,
            # The nginx image renders /etc/nginx/templates into NGINX_ENVSUBST_OUTPUT_DIR,
            # substituting only obskit's variables (nginx's own $host and such stay). The
            # image creates no such folder and renders nothing into a folder that is missing
            # or read-only, so it is a scratch folder; the entrypoint script writes the TLS
            # key pair and htpasswd into another (OBSKIT_GW_SECRETS_DIR).
            image_env=(("NGINX_ENVSUBST_FILTER", "^OBSKIT_"), ("NGINX_ENVSUBST_OUTPUT_DIR", GATEWAY_CONF_DIR)),
            scratch_dirs=(GATEWAY_CONF_DIR, GATEWAY_SECRETS_DIR),
            binaries=("nginx",),
            install_hint="install nginx (Debian: apt-get install nginx); put it on PATH or set environments.<env>.binaries.nginx",
            probes=(Probe("https", "/nginx-health", scheme="https"),),
        ),
    }


def component_of(service: str) -> str:
    """The component a service runs: every Mimir replica (``mimir-1``...) runs mimir."""
    return "mimir" if service.startswith("mimir-") else service
