"""Environment bindings: the only place where environments differ.

Config files are identical everywhere; each component expands environment variables
itself. For every environment this module yields an explicit table, per service, of
variable -> binding. A binding is a plain value, a secret (resolved from the secret
store, never written into rendered files), or a deploy-time output (e.g. the RDS
endpoint, known only after Terraform has run).

Three binding tables exist: ``compose`` (the local docker stack), ``aws`` (ECS Fargate),
and ``process`` (each component as a process on 127.0.0.1, no Docker: ``obskit up
--runtime process``, obskit's own tests, and anyone who has the component binaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from obskit import components as component_facts
from obskit.alerting import contact_bindings
from obskit.values import Binding, Local, Output, Secret, Service, envname, tenant_names  # noqa: F401 (re-exported)
from obskit.spec.model import AwsEnvironment, ComposeEnvironment, ProcessEnvironment, Spec


# --------------------------------------------------------------------------- secrets


def tenant_password(tenant: str, role: str) -> Secret:
    return Secret(f"tenant-{tenant}-{role}-password")


def alert_history_user(spec: Spec) -> str:
    """The gateway user Grafana writes and reads its alert state history with: the
    operators' tenant, Loki's push and query routes only (the gateway's role "history")."""
    return f"{spec.operators.tenant}-history"


def tenant_authorization(tenant: str, role: str) -> Secret:
    """The ready-made ``Authorization: Basic ...`` value of a tenant's user (derived from
    its password by the secret store)."""
    return Secret(f"tenant-{tenant}-{role}-authorization")


ADMIN_PASSWORD = Secret("gateway-admin-password")
POSTGRES_PASSWORD = Secret("postgres-password")
GATEWAY_TLS_CERT = Secret("gateway-tls-cert")
GATEWAY_TLS_KEY = Secret("gateway-tls-key")
GATEWAY_CA_CERT = Secret("gateway-ca-cert")
GATEWAY_HTPASSWD = Secret("gateway-htpasswd")
# Grafana's secret_key, which encrypts the secrets it keeps in its database (datasource
# passwords, contact point settings): generated, never Grafana's public default.
GRAFANA_SECRET_KEY = Secret("grafana-secret-key")


def alb_subnets(vpc_cidr: str) -> str:
    """The block of the two public subnets, where the ALB's nodes are: terraform's network
    module cuts them as cidrsubnet(vpc_cidr, 8, 0) and (vpc_cidr, 8, 1), which together are
    cidrsubnet(vpc_cidr, 7, 0) and nothing else."""
    from ipaddress import IPv4Network

    return str(next(IPv4Network(vpc_cidr).subnets(prefixlen_diff=7)))


def grafana_admin_password(spec: Spec) -> Secret:
    return Secret("grafana-admin-password", spec.grafana.admin_password)


def object_store_keys(spec: Spec) -> tuple[Secret, Secret]:
    store = spec.object_store
    return (
        Secret("object-store-access-key", store.access_key_id),
        Secret("object-store-secret-key", store.secret_access_key),
    )


def secret_catalogue(spec: Spec, env_name: str) -> dict[str, Secret]:
    """Every secret the environment's services reference, by name."""
    found: dict[str, Secret] = {}
    for service in services(spec, env_name).values():
        for value in service.env.values():
            if isinstance(value, Secret):
                found[value.name] = value
    return dict(sorted(found.items()))


# --------------------------------------------------------------------------- tables


# Container-side ports (facts of the components; the process runtime moves them).
PORTS = component_facts.PORTS


@dataclass(frozen=True)
class Topology:
    """How services reach each other in one environment."""

    host: Mapping[str, str]  # service -> host name
    port: Mapping[str, Mapping[str, int]]  # service -> port name -> number
    listen: str  # listen address inside a service
    data_dir: Mapping[str, "Binding"]  # service -> data directory
    config_dir: Mapping[str, "Binding"]  # component -> directory holding its rendered configs
    gateway_url: str  # how services inside the stack reach the gateway
    public_url: str  # how people and clients outside reach the gateway
    s3: Mapping[str, Binding]
    instance_addr: str = ""
    instance_id: Mapping[str, str] | None = None
    gateway_user: "Binding" = "nginx"
    gateway_files: Mapping[str, "Binding"] | None = None
    # The DNS server the gateway asks when it re-resolves its upstreams' names, and whether
    # it does ("resolve" on each upstream server, nginx >= 1.27.3): backends that are
    # replaced get new addresses (ECS tasks, recreated containers).
    resolver: str = "127.0.0.1"
    upstream_resolve: "bool | Local" = False
    # Whether data directories vanish with their container (ECS Fargate tasks): then Loki
    # and Mimir flush what they hold to the object store when they stop.
    ephemeral_storage: bool = False
    # The collector's host metrics: which receivers (a YAML list the collector expands) and
    # the name its series carry as `instance`.
    host_receivers: str = "[host_metrics]"
    # Who may tell the gateway a client's address (X-Forwarded-For): the load balancer's
    # network in AWS; "unix:" elsewhere, a client that cannot exist.
    trusted_proxy: str = "unix:"
    host_name: "Binding" = "localhost"

    def addr(self, service: str, port: str) -> str:
        return f"{self.host[service]}:{self.port[service][port]}"


def _common(spec: Spec, topo: Topology) -> dict[str, Service]:
    """Bindings shared by every environment, shaped by its topology."""
    out: dict[str, Service] = {}
    tenants = tenant_names(spec)
    s3 = dict(topo.s3)

    def buckets(*keys: str) -> dict[str, Binding]:
        return {f"{k.split('_', 1)[0].upper()}_BUCKET_{k.split('_', 1)[1].upper()}": s3[k] for k in keys}

    # -- Loki
    out["loki"] = Service(
        "loki",
        "loki",
        {
            "LOKI_LISTEN_ADDRESS": topo.listen,
            "LOKI_HTTP_PORT": str(topo.port["loki"]["http"]),
            "LOKI_GRPC_PORT": str(topo.port["loki"]["grpc"]),
            "LOKI_MEMBERLIST_PORT": str(topo.port["loki"]["memberlist"]),
            "LOKI_MEMBERLIST_JOIN": topo.addr("loki", "memberlist"),
            "LOKI_INSTANCE_ADDR": topo.instance_addr,
            "LOKI_DATA_DIR": topo.data_dir["loki"],
            "LOKI_FLUSH_ON_SHUTDOWN": "true" if topo.ephemeral_storage else "false",
            "S3_ENDPOINT": s3["endpoint"],
            "S3_REGION": s3["region"],
            "S3_INSECURE": s3["insecure"],
            "S3_FORCE_PATH_STYLE": s3["force_path_style"],
            "S3_ACCESS_KEY_ID": s3["access_key_id"],
            "S3_SECRET_ACCESS_KEY": s3["secret_access_key"],
            **buckets("loki_chunks", "loki_ruler"),
        },
    )

    # -- Mimir replicas
    join = {
        f"MIMIR_MEMBERLIST_JOIN_{i}": topo.addr(r, "memberlist")
        for i, r in enumerate(spec.mimir_replicas, start=1)
    }
    for replica in spec.mimir_replicas:
        out[replica] = Service(
            replica,
            "mimir",
            {
                "MIMIR_LISTEN_ADDRESS": topo.listen,
                "MIMIR_HTTP_PORT": str(topo.port[replica]["http"]),
                "MIMIR_GRPC_PORT": str(topo.port[replica]["grpc"]),
                "MIMIR_MEMBERLIST_PORT": str(topo.port[replica]["memberlist"]),
                **join,
                "MIMIR_INSTANCE_ADDR": topo.instance_addr,
                "MIMIR_INSTANCE_ID": (topo.instance_id or {}).get(replica, ""),
                "MIMIR_DATA_DIR": topo.data_dir[replica],
                "MIMIR_FLUSH_ON_SHUTDOWN": "true" if topo.ephemeral_storage else "false",
                "MIMIR_CONFIG_DIR": topo.config_dir["mimir"],
                "S3_ENDPOINT": s3["endpoint"],
                "S3_REGION": s3["region"],
                "S3_INSECURE": s3["insecure"],
                "S3_BUCKET_LOOKUP_TYPE": s3["bucket_lookup_type"],
                "S3_ACCESS_KEY_ID": s3["access_key_id"],
                "S3_SECRET_ACCESS_KEY": s3["secret_access_key"],
                **buckets("mimir_blocks", "mimir_ruler", "mimir_alertmanager"),
            },
        )

    # -- Collector
    listen = topo.listen
    out["otelcol"] = Service(
        "otelcol",
        "otelcol",
        {
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"{listen}:{topo.port['otelcol']['grpc']}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"{listen}:{topo.port['otelcol']['http']}",
            "OTELCOL_HEALTH_ENDPOINT": f"{listen}:{topo.port['otelcol']['health']}",
            "OTELCOL_TELEMETRY_HOST": listen,
            "OTELCOL_TELEMETRY_PORT": str(topo.port["otelcol"]["telemetry"]),
            "OTELCOL_GATEWAY_URL": topo.gateway_url,
            "OTELCOL_GATEWAY_AUTHORIZATION": tenant_authorization(spec.collector_tenant, "write"),
            "OTELCOL_GATEWAY_CA_PEM": GATEWAY_CA_CERT,
            "OTELCOL_GATEWAY_LOG_ENDPOINT": f"{listen}:{topo.port['otelcol']['syslog']}",
            "OTELCOL_OPS_AUTHORIZATION": tenant_authorization(spec.operators.tenant, "write"),
            # What reports the host's CPU and memory: the host metrics receiver where the
            # collector sees a host (compose, processes); ECS's task metadata on Fargate.
            "OTELCOL_HOST_RECEIVERS": topo.host_receivers,
            "OTELCOL_HOST_NAME": topo.host_name,
            # Self-monitoring: what the collector scrapes into the operators' tenant.
            "OTELCOL_SCRAPE_LOKI": topo.addr("loki", "http"),
            "OTELCOL_SCRAPE_GRAFANA": topo.addr("grafana", "http"),
            "OTELCOL_SCRAPE_OTELCOL": topo.addr("otelcol", "telemetry"),
            **{f"OTELCOL_SCRAPE_{envname(r)}": topo.addr(r, "http") for r in spec.mimir_replicas},
        },
    )

    # -- Grafana (database settings are added per environment)
    grafana: dict[str, Binding] = {
        "GF_SERVER_HTTP_PORT": str(topo.port["grafana"]["http"]),
        "GF_SERVER_ROOT_URL": f"{topo.public_url}{spec.grafana.sub_path}/",
        "GF_SECURITY_ADMIN_PASSWORD": grafana_admin_password(spec),
        "GF_SECURITY_SECRET_KEY": GRAFANA_SECRET_KEY,
        "GF_PATHS_DATA": topo.data_dir["grafana"],
        "OBSKIT_GRAFANA_DASHBOARDS": topo.config_dir["grafana_dashboards"],
        "OBSKIT_GATEWAY_URL": topo.gateway_url,
        "OBSKIT_GATEWAY_CA_PEM": GATEWAY_CA_CERT,
    }
    for tenant in tenants:
        grafana[f"OBSKIT_{envname(tenant)}_READ_USER"] = f"{tenant}-read"
        grafana[f"OBSKIT_{envname(tenant)}_READ_PASSWORD"] = tenant_password(tenant, "read")
    # Alert state history goes to Loki, in the operators' tenant, through the gateway.
    grafana["OBSKIT_ALERT_HISTORY_USER"] = alert_history_user(spec)
    grafana["OBSKIT_ALERT_HISTORY_PASSWORD"] = tenant_password(spec.operators.tenant, "history")
    grafana |= contact_bindings(spec)
    out["grafana"] = Service("grafana", "grafana", grafana)

    # -- Gateway
    files = topo.gateway_files or {}
    gateway: dict[str, Binding] = {
        "OBSKIT_GW_USER": topo.gateway_user,
        "OBSKIT_GW_PID_FILE": files.get("pid", "/var/run/nginx.pid"),
        "OBSKIT_GW_ERROR_LOG": files.get("error_log", "/dev/stderr"),
        "OBSKIT_GW_ACCESS_LOG": files.get("access_log", "/dev/stdout"),
        "OBSKIT_GW_TEMP_DIR": files.get("temp_dir", "/var/cache/nginx"),
        "OBSKIT_GW_CONF_DIR": files.get("conf_dir", "/etc/nginx/obskit"),
        "OBSKIT_GW_SECRETS_DIR": files.get("secrets_dir", "/run/obskit"),
        "OBSKIT_GW_LISTEN_HTTPS": f"{topo.listen}:{topo.port['gateway']['https']}",
        "OBSKIT_GW_LISTEN_HTTP": f"{topo.listen}:{topo.port['gateway']['http']}",
        "OBSKIT_GW_PUBLIC_URL": topo.public_url,
        "OBSKIT_GW_LOKI": topo.addr("loki", "http"),
        "OBSKIT_GW_OTELCOL": topo.addr("otelcol", "http"),
        "OBSKIT_GW_LOG_SYSLOG": topo.addr("otelcol", "syslog"),
        "OBSKIT_GW_GRAFANA": topo.addr("grafana", "http"),
        "OBSKIT_GW_TLS_CERT_PEM": GATEWAY_TLS_CERT,
        "OBSKIT_GW_TLS_KEY_PEM": GATEWAY_TLS_KEY,
        "OBSKIT_GW_HTPASSWD": GATEWAY_HTPASSWD,
    }
    for replica in spec.mimir_replicas:
        gateway[f"OBSKIT_GW_{envname(replica)}"] = topo.addr(replica, "http")
    gateway["OBSKIT_GW_TRUSTED_PROXY"] = topo.trusted_proxy
    gateway["OBSKIT_GW_RESOLVER"] = topo.resolver
    gateway["OBSKIT_GW_UPSTREAM_RESOLVE"] = (
        topo.upstream_resolve if isinstance(topo.upstream_resolve, Local)
        else "resolve" if topo.upstream_resolve else ""
    )
    out["gateway"] = Service("gateway", "gateway", gateway)
    return out


def _compose(spec: Spec, env: ComposeEnvironment) -> dict[str, Service]:
    store = spec.object_store
    access, secret = object_store_keys(spec)
    hosts = {name: name for name in ["loki", "otelcol", "grafana", "gateway", "postgres", "object-store"]}
    ports: dict[str, Mapping[str, int]] = {k: v for k, v in PORTS.items()}
    for replica in spec.mimir_replicas:
        hosts[replica] = replica
        ports[replica] = PORTS["mimir"]
    data = {"loki": "/loki", "grafana": "/var/lib/grafana"} | {r: "/data" for r in spec.mimir_replicas}
    public = f"https://{env.hostname}:{env.ports.gateway_https}"
    if store.provider != "external":
        s3: dict[str, Binding] = {
            "endpoint": f"object-store:{PORTS['object-store']['s3']}",
            "insecure": "true",
            "force_path_style": "true",
            "bucket_lookup_type": "path",
        }
    else:
        s3 = {
            "endpoint": store.endpoint or "",
            "insecure": str(store.insecure).lower(),
            "force_path_style": "true",
            "bucket_lookup_type": "path",
        }
    s3 |= {"region": store.region, "access_key_id": access, "secret_access_key": secret}
    s3 |= {k: v for k, v in store.buckets.model_dump().items()}
    topo = Topology(
        host=hosts,
        port=ports,
        listen="0.0.0.0",
        data_dir=data,
        config_dir={"mimir": "/etc/mimir", "grafana_dashboards": "/etc/grafana/dashboards"},
        gateway_url=f"https://gateway:{PORTS['gateway']['https']}",
        public_url=public,
        s3=s3,
        instance_id={r: r for r in spec.mimir_replicas},
        resolver="127.0.0.11",  # Docker's embedded DNS on the compose network
        upstream_resolve=True,
        host_name=f"{spec.project}-docker-host",
    )
    out = _common(spec, topo)
    out["grafana"].env.update(  # type: ignore[attr-defined]
        {
            "GF_DATABASE_HOST": f"postgres:{PORTS['postgres']['postgres']}",
            "GF_DATABASE_NAME": spec.grafana.database,
            "GF_DATABASE_USER": spec.grafana.database_user,
            "GF_DATABASE_PASSWORD": POSTGRES_PASSWORD,
            "GF_DATABASE_SSL_MODE": "disable",
        }
    )
    out["postgres"] = Service(
        "postgres",
        "postgres",
        {
            "POSTGRES_DB": spec.grafana.database,
            "POSTGRES_USER": spec.grafana.database_user,
            "POSTGRES_PASSWORD": POSTGRES_PASSWORD,
        },
    )
    if store.provider == "minio":
        out["object-store"] = Service(
            "object-store",
            "object-store",
            {"MINIO_ROOT_USER": access, "MINIO_ROOT_PASSWORD": secret},
        )
    elif store.provider == "versitygw":
        out["object-store"] = Service(
            "object-store",
            "object-store",
            {"ROOT_ACCESS_KEY_ID": access, "ROOT_SECRET_ACCESS_KEY": secret,
             "VGW_PORT": f":{PORTS['object-store']['s3']}"},
        )
    return out


def _aws(spec: Spec, env: AwsEnvironment) -> dict[str, Service]:
    ns = env.service_namespace
    names = ["loki", "otelcol", "grafana", "gateway", *spec.mimir_replicas]
    hosts = {n: f"{n}.{ns}" for n in names}
    ports: dict[str, Mapping[str, int]] = {k: PORTS[k] for k in ("loki", "otelcol", "grafana", "gateway")}
    for replica in spec.mimir_replicas:
        ports[replica] = PORTS["mimir"]
    s3: dict[str, Binding] = {
        "endpoint": f"s3.{env.region}.amazonaws.com",
        "insecure": "false",
        "force_path_style": "false",
        "bucket_lookup_type": "virtual-hosted",
        "region": env.region,
        # Empty: Loki and Mimir fall back to the ECS task role's credentials.
        "access_key_id": "",
        "secret_access_key": "",
    }
    s3 |= {k: env.bucket_prefix + v for k, v in spec.object_store.buckets.model_dump().items()}
    topo = Topology(
        host=hosts,
        port=ports,
        listen="0.0.0.0",
        data_dir={"loki": "/loki", "grafana": "/var/lib/grafana"} | {r: "/data" for r in spec.mimir_replicas},
        config_dir={"mimir": "/etc/mimir", "grafana_dashboards": "/etc/grafana/dashboards"},
        gateway_url=f"https://gateway.{ns}:{PORTS['gateway']['https']}",
        public_url=f"https://{env.domain}",
        s3=s3,
        instance_id={r: r for r in spec.mimir_replicas},
        resolver="169.254.169.253",  # the VPC's Route 53 Resolver, which answers Cloud Map names
        upstream_resolve=True,
        ephemeral_storage=True,  # Fargate task storage goes with the task
        # Fargate shows the collector no host: its task's CPU comes from the task metadata.
        host_receivers="[awsecscontainermetrics]",
        trusted_proxy=alb_subnets(env.vpc_cidr),  # the ALB's nodes: the public subnets only
        host_name=f"{spec.project}-ecs",
    )
    out = _common(spec, topo)
    out["grafana"].env.update(  # type: ignore[attr-defined]
        {
            "GF_DATABASE_HOST": Output("grafana_database_endpoint"),
            "GF_DATABASE_NAME": spec.grafana.database,
            "GF_DATABASE_USER": spec.grafana.database_user,
            "GF_DATABASE_PASSWORD": POSTGRES_PASSWORD,
            "GF_DATABASE_SSL_MODE": "require",
        }
    )
    return out


# The process runtime's port layout: consecutive ports from the environment's base_port,
# in this order (the gateway's HTTPS port is base_port itself).
def process_ports(spec: Spec, base_port: int) -> dict[str, dict[str, int]]:
    order = ["gateway", "otelcol", "loki", *spec.mimir_replicas, "grafana", "postgres", "object-store"]
    out: dict[str, dict[str, int]] = {}
    port = base_port
    for service in order:
        kind = "mimir" if service in spec.mimir_replicas else service
        out[service] = {}
        for name in PORTS[kind]:
            out[service][name] = port
            port += 1
    return out


def _process(spec: Spec, env: ProcessEnvironment) -> dict[str, Service]:
    """Every component as a process on 127.0.0.1, from the environment's base port.

    Paths are inside the run folder (``Local("run_dir", ...)``), which the process runtime
    chooses; it also copies the rendered configs to ``configs/`` there, so the processes run
    exactly the bytes of this render. S3 is the spec's external endpoint, or a local S3 API
    the runtime starts (a moto server) on this environment's object-store port.
    """
    names = ["loki", "otelcol", "grafana", "gateway", *spec.mimir_replicas]
    ports = process_ports(spec, env.base_port)
    store = spec.object_store
    access, secret = object_store_keys(spec)
    if store.provider == "external":
        s3: dict[str, Binding] = {"endpoint": store.endpoint or "", "insecure": str(store.insecure).lower()}
    else:
        s3 = {"endpoint": f"127.0.0.1:{ports['object-store']['s3']}", "insecure": "true"}
    s3 |= {
        "force_path_style": "true",
        "bucket_lookup_type": "path",
        "region": store.region,
        "access_key_id": access,
        "secret_access_key": secret,
    }
    s3 |= {k: v for k, v in store.buckets.model_dump().items()}
    public = f"https://{env.hostname}:{ports['gateway']['https']}"
    topo = Topology(
        host={n: "127.0.0.1" for n in names},
        port=ports,
        listen="127.0.0.1",
        data_dir={n: Local("run_dir", f"data/{n}") for n in names},
        config_dir={
            "mimir": Local("run_dir", "configs/mimir"),
            "grafana_dashboards": Local("run_dir", "configs/grafana/dashboards"),
        },
        gateway_url=f"https://localhost:{ports['gateway']['https']}",
        public_url=public,
        s3=s3,
        instance_addr="127.0.0.1",
        instance_id={r: r for r in spec.mimir_replicas},
        gateway_user=Local("user"),
        gateway_files={
            "pid": Local("run_dir", "gateway/nginx.pid"),
            "error_log": Local("run_dir", "logs/gateway-error.log"),
            "access_log": Local("run_dir", "logs/gateway-access.log"),
            "temp_dir": Local("run_dir", "gateway/tmp"),
            "conf_dir": Local("run_dir", "gateway/conf"),
            "secrets_dir": Local("run_dir", "gateway/secrets"),
        },
        upstream_resolve=Local("nginx_resolve"),
        host_name=Local("hostname"),
    )
    out = _common(spec, topo)
    db = env.database
    if db.mode == "external":
        host: Binding = db.host or ""
        password: Binding = Secret("postgres-password", db.password)
    else:
        host, password = f"127.0.0.1:{ports['postgres']['postgres']}", POSTGRES_PASSWORD
    out["grafana"].env.update(  # type: ignore[attr-defined]
        {
            "GF_DATABASE_HOST": host,
            "GF_DATABASE_NAME": spec.grafana.database,
            "GF_DATABASE_USER": spec.grafana.database_user,
            "GF_DATABASE_PASSWORD": password,
            "GF_DATABASE_SSL_MODE": db.ssl_mode,
            # Outside a container the configs are not at /etc/grafana: the run folder's copy.
            "GF_PATHS_PROVISIONING": Local("run_dir", "configs/grafana/provisioning"),
            "GF_PATHS_LOGS": Local("run_dir", "data/grafana/log"),
            "GF_PATHS_PLUGINS": Local("run_dir", "data/grafana/plugins"),
        }
    )
    if db.mode == "private":
        out["postgres"] = Service(
            "postgres",
            "postgres",
            {
                "POSTGRES_DB": spec.grafana.database,
                "POSTGRES_USER": spec.grafana.database_user,
                "POSTGRES_PASSWORD": POSTGRES_PASSWORD,
                "POSTGRES_PORT": str(ports["postgres"]["postgres"]),
                "PGDATA": Local("run_dir", "data/postgres"),
            },
        )
    if store.provider != "external":
        out["object-store"] = Service(
            "object-store",
            "object-store",
            {
                "S3_PORT": str(ports["object-store"]["s3"]),
                "S3_ACCESS_KEY_ID": access,
                "S3_SECRET_ACCESS_KEY": secret,
                "S3_DATA_DIR": Local("run_dir", "data/object-store"),
            },
        )
    return out


def services(spec: Spec, env_name: str) -> dict[str, Service]:
    """The binding table of a declared environment, by service name (sorted)."""
    env = spec.environments[env_name]
    if isinstance(env, ComposeEnvironment):
        table = _compose(spec, env)
    elif isinstance(env, ProcessEnvironment):
        table = _process(spec, env)
    else:
        table = _aws(spec, env)
    return dict(sorted(table.items()))


def binding_table(spec: Spec, env_name: str) -> dict:
    """The JSON-ready binding table written beside the rendered configs."""
    env = spec.environments[env_name]
    return {
        "environment": env_name,
        "kind": env.kind,
        "services": {name: svc.to_json() for name, svc in services(spec, env_name).items()},
    }
