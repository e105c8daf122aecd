"""ECS container definitions and the Terraform variables, from the spec and the AWS
binding table. Terraform owns the task definitions; obskit decides what goes in them.

Placeholders that only Terraform can fill are written as ``__OBSKIT_OUTPUT_<name>__``
(deploy-time outputs such as the database endpoint) and ``__OBSKIT_SSM_ARN__`` (the ARN
prefix of this environment's SSM parameters); the ecs module replaces them.
"""

from __future__ import annotations

import json

from obskit import bindings
from obskit.promote.components import components
from obskit.images import ImagePlan
from obskit.spec.model import EPHEMERAL_STORAGE_DEFAULT, AwsEnvironment, Spec

SSM_ARN = "__OBSKIT_SSM_ARN__"
PROBE_INTERVAL = 15


def output_placeholder(name: str) -> str:
    return f"__OBSKIT_OUTPUT_{name}__"


def ssm_prefix(spec: Spec, env_name: str) -> str:
    return f"/obskit/{spec.project}/{env_name}"


def ssm_parameter(spec: Spec, env_name: str, secret: bindings.Secret) -> str:
    """Where a secret lives in SSM: its own ssm:/path, else obskit's prefix/name."""
    if secret.ref and secret.ref.startswith("ssm:"):
        return secret.ref[4:]
    return f"{ssm_prefix(spec, env_name)}/{secret.name}"


def ssm_arn(parameter: str) -> str:
    """The ARN of a parameter, with the prefix as a placeholder. The ARN has exactly one "/"
    after "parameter" whether or not the name starts with one (ssm:name or ssm:/path)."""
    return f"{SSM_ARN}/{parameter.lstrip('/')}"


def user_ssm_parameters(spec: Spec, env_name: str) -> list[str]:
    """The spec's own ssm: parameters (outside obskit's prefix), which the execution role
    must be able to read."""
    return sorted({s.ref[4:] for s in bindings.secret_catalogue(spec, env_name).values()
                   if s.ref and s.ref.startswith("ssm:")})


def log_group(spec: Spec, env_name: str, service: str) -> str:
    return f"/obskit/{spec.project}/{env_name}/{service}"


def _probe(service: str, image: str, url: str, region: str, group: str) -> dict:
    """A sidecar that probes a distroless container from inside the task (same network
    namespace), as compose's readiness service does: healthy only while the URL answers.
    It runs obskit's gateway image from ECR (nginx's image, which has a shell and curl),
    pinned by content tag: no pull from Docker Hub, no internet path needed."""
    return {
        "name": f"{service}-probe",
        "image": image,
        "essential": True,
        "entryPoint": ["/bin/sh", "-c"],
        "command": ["trap 'exit 0' TERM INT QUIT; while :; do sleep 3600 & wait $!; done"],
        "healthCheck": {"command": ["CMD-SHELL", f"curl -fsS -o /dev/null {url} || exit 1"],
                        "interval": PROBE_INTERVAL, "timeout": 5, "retries": 3, "startPeriod": 60},
        "logConfiguration": _logs(region, group, "probe"),
        "dependsOn": [{"containerName": service, "condition": "START"}],
    }


def _logs(region: str, group: str, prefix: str) -> dict:
    return {"logDriver": "awslogs", "options": {"awslogs-group": group, "awslogs-region": region,
                                                "awslogs-stream-prefix": prefix}}


def scratch_volume(path: str) -> str:
    """The task volume that holds a scratch folder: ``/etc/nginx/obskit`` -> ``scratch-etc-nginx-obskit``."""
    return "scratch" + path.replace("/", "-")


def container_definitions(spec: Spec, env_name: str, images: dict[str, str]) -> dict[str, list[dict]]:
    """service -> its task's containers. ``images`` maps component -> image URI."""
    env = spec.environments[env_name]
    assert isinstance(env, AwsEnvironment)
    comps = components(spec.grafana.sub_path)
    out: dict[str, list[dict]] = {}
    for name, service in sorted(bindings.services(spec, env_name).items()):
        comp = comps[service.component]
        environment, secrets = [], []
        # The image's own contract first (the same entries compose gives the same image),
        # then the binding table. ECS drops empty values and the provider does not
        # normalise them, so an empty entry would differ on every plan and force a new
        # task definition: a variable with no value is left out (the images read unset
        # and empty alike).
        values = {**dict(comp.image_env), **service.env}
        for var, b in sorted(values.items()):
            if isinstance(b, bindings.Secret):
                secrets.append({"name": var, "valueFrom": ssm_arn(ssm_parameter(spec, env_name, b))})
            elif isinstance(b, bindings.Output):
                environment.append({"name": var, "value": output_placeholder(b.name)})
            elif b != "":
                environment.append({"name": var, "value": b})
        group = log_group(spec, env_name, name)
        main = {
            "name": name,
            "image": images[service.component],
            "essential": True,
            "portMappings": [{"name": p, "containerPort": port, "hostPort": port, "protocol": proto}
                             for p, port, proto in comp.ports],
            "environment": environment,
            "secrets": secrets,
            "logConfiguration": _logs(env.region, group, name),
            "stopTimeout": comp.stop_timeout,
        }
        if comp.entrypoint:
            main["entryPoint"] = list(comp.entrypoint)
        if comp.command:
            main["command"] = list(comp.command)
        if comp.scratch_dirs:
            # Folders the image writes at start: task storage volumes (the task definition
            # declares one per sourceVolume), fresh for every task, as compose's tmpfs.
            main["mountPoints"] = [{"sourceVolume": scratch_volume(d), "containerPath": d, "readOnly": False}
                                   for d in comp.scratch_dirs]
        containers = [main]
        url = f"{comp.health_scheme}://localhost:{comp.health_port}{comp.health_path}"
        if comp.health_command is not None:
            main["healthCheck"] = {"command": ["CMD", *comp.health_command], "interval": PROBE_INTERVAL,
                                   "timeout": 5, "retries": 3, "startPeriod": 60}
        else:
            containers.append(_probe(name, images["gateway"], url, env.region, group))
        out[name] = containers
    return out


def grafana_egress_ports(spec: Spec) -> list[int]:
    """Ports besides 443 that Grafana's notifications need: the SMTP server's, and those of
    webhook URLs written in the spec. (A URL kept as a secret is not known here: it must be
    HTTPS on 443, which Grafana may always reach.)"""
    from urllib.parse import urlsplit

    ports = set()
    if spec.alerting.smtp:
        ports.add(int(spec.alerting.smtp.host.rsplit(":", 1)[1]))
    for contact in spec.alerting.contact_points:
        url = getattr(contact, "url", None)
        if contact.type == "webhook" and url and url.startswith(("http://", "https://")):
            parts = urlsplit(url)
            ports.add(parts.port or (80 if parts.scheme == "http" else 443))
    return sorted(ports - {443})


def replicas(env: AwsEnvironment, component: str) -> tuple[int, int, int]:
    """(desired, maximum, CPU target) of a component's service. Only the gateway scales:
    each Mimir replica is a service of its own with a ring identity, Loki runs one replica,
    and one collector and one Grafana keep self-monitoring and alerting single."""
    if component == "gateway":
        return env.gateway.replicas, env.gateway.max_replicas, env.gateway.cpu_target_percent
    return 1, 1, 0


def images(plans: dict[str, ImagePlan], registry: str) -> dict[str, str]:
    """component -> the image URI in ECR."""
    return {c: plans[c].uri(registry) for c in sorted(plans)}


def tfvars(spec: Spec, env_name: str, plans: dict[str, ImagePlan], config_hashes: dict[str, str],
           registry: str, secrets_versions: dict[str, str] | None = None) -> dict:
    """Everything the root module needs, as JSON-ready data. ``secrets_versions`` maps each
    service to a digest of the SSM versions of the secrets it reads (a change redeploys it)."""
    env = spec.environments[env_name]
    assert isinstance(env, AwsEnvironment)
    comps = components(spec.grafana.sub_path)
    defs = container_definitions(spec, env_name, images(plans, registry))
    buckets = {k: env.bucket_prefix + v for k, v in spec.object_store.buckets.model_dump().items()}
    services = {}
    for name, service in sorted(bindings.services(spec, env_name).items()):
        comp = comps[service.component]
        size = getattr(env.sizes, service.component)
        desired, maximum, cpu_target = replicas(env, service.component)
        services[name] = {
            "component": service.component,
            "cpu": size.cpu,
            "memory": size.memory,
            "desired_count": desired,
            "max_count": maximum,
            "cpu_target_percent": cpu_target,
            "secrets_version": (secrets_versions or {}).get(name, "0"),
            "port": comp.health_port,
            "health_path": comp.health_path,
            "buckets": [buckets[b] for b in comp.task_role_buckets],
            "container_definitions": json.dumps(defs[name], sort_keys=True),
            # Fargate task storage: the spec's size, else obskit's default for Loki and
            # Mimir (their working folders), else none (Fargate's 20 GiB).
            "ephemeral_storage_gib": size.ephemeral_storage_gib or EPHEMERAL_STORAGE_DEFAULT.get(service.component),
        }
    return {
        "project": spec.project,
        "environment": env_name,
        "region": env.region,
        "domain": env.domain,
        "hosted_zone_id": env.hosted_zone_id,
        "certificate_arn": env.certificate_arn,
        "vpc_cidr": env.vpc_cidr,
        "service_namespace": env.service_namespace,
        "grafana_sub_path": spec.grafana.sub_path,
        "log_retention_days": env.log_retention_days,
        "ssm_prefix": ssm_prefix(spec, env_name),
        "extra_ssm_parameters": user_ssm_parameters(spec, env_name),
        "buckets": buckets,
        "database": {
            "engine_version": env.database.engine_version,
            "instance_class": env.database.instance_class,
            "instances": env.database.instances,
            "name": spec.grafana.database,
            "username": spec.grafana.database_user,
            "password_parameter": ssm_parameter(spec, env_name, bindings.POSTGRES_PASSWORD),
            "restore_snapshot": env.database.restore_snapshot,
        },
        "alb_deletion_protection": env.deletion_protection.load_balancer,
        "database_deletion_protection": env.deletion_protection.database,
        "alb_access_logs": env.alb_access_logs,
        "alb_access_logs_bucket": f"{env.bucket_prefix}alb-logs" if env.alb_access_logs else None,
        "wait_for_steady_state": env.wait_for_steady_state,
        "ecs_exec": env.ecs_exec,
        "ecr_repositories": sorted(p.repository for p in plans.values()),
        "grafana_egress_ports": grafana_egress_ports(spec),
        "config_hashes": dict(sorted(config_hashes.items())),
        "services": services,
    }
