"""Per component: where its configs go inside the container, how it starts, its ports
and its health check. Compose mounts the same paths; images copy the same files there."""

from __future__ import annotations

from dataclasses import dataclass, field

from obskit.bindings import PORTS


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
    # Seconds ECS waits after SIGTERM. Loki and Mimir flush to S3 when they stop (their task
    # storage goes with the task), so they get Fargate's longest.
    stop_timeout: int = 60


def components(grafana_sub_path: str) -> dict[str, Component]:
    def ports(kind: str, *names: str, udp: tuple[str, ...] = ()) -> tuple[tuple[str, int, str], ...]:
        return tuple((n, PORTS[kind][n], "udp" if n in udp else "tcp") for n in names)

    return {
        "loki": Component(
            "loki", "loki", (("loki.yaml", "/etc/loki/loki.yaml"),),
            ("-config.file=/etc/loki/loki.yaml", "-config.expand-env=true", "-target=all"),
            ports("loki", "http", "grpc", "memberlist"), "/ready", PORTS["loki"]["http"],
            health_command=("/usr/bin/loki", "-health", "-health.url=http://localhost:3100/ready"),
            task_role_buckets=("loki_chunks", "loki_ruler"), stop_timeout=120,
        ),
        "mimir": Component(
            "mimir", "mimir", (("mimir.yaml", "/etc/mimir/mimir.yaml"), ("runtime.yaml", "/etc/mimir/runtime.yaml")),
            ("-config.file=/etc/mimir/mimir.yaml", "-config.expand-env=true", "-target=all"),
            ports("mimir", "http", "grpc", "memberlist"), "/ready", PORTS["mimir"]["http"],
            health_command=None,  # distroless, no health flag: probed by a sidecar (never /-/healthy)
            task_role_buckets=("mimir_blocks", "mimir_ruler", "mimir_alertmanager"), stop_timeout=120,
        ),
        "otelcol": Component(
            "otelcol", "otelcol", (("config.yaml", "/etc/otelcol/config.yaml"),),
            ("--config=/etc/otelcol/config.yaml",),
            ports("otelcol", "grpc", "http", "health", "telemetry", "syslog", udp=("syslog",)),
            "/", PORTS["otelcol"]["health"], health_command=None,
        ),
        "grafana": Component(
            "grafana", "grafana",
            (("grafana.ini", "/etc/grafana/grafana.ini"), ("provisioning", "/etc/grafana/provisioning"),
             ("dashboards", "/etc/grafana/dashboards")),
            (), ports("grafana", "http"), f"{grafana_sub_path}/api/health", PORTS["grafana"]["http"],
            health_command=("curl", "-fsS", "-o", "/dev/null", f"http://localhost:3000{grafana_sub_path}/api/health"),
        ),
        "gateway": Component(
            "gateway", "gateway",
            (("templates", "/etc/nginx/templates"), ("entrypoint.d/05-obskit-secrets.sh", "/docker-entrypoint.d/05-obskit-secrets.sh")),
            ("nginx", "-c", "/etc/nginx/obskit/nginx.conf", "-g", "daemon off;"),
            ports("gateway", "https", "http", "status"), "/nginx-health", PORTS["gateway"]["https"], "https",
            health_command=("curl", "-fsSk", "-o", "/dev/null", "https://localhost:8443/nginx-health"),
        ),
    }
