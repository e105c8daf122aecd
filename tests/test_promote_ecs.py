"""What ECS gets: images, container definitions and Terraform variables from the spec.
Goldens pin them (update with OBSKIT_UPDATE_GOLDEN=1); the rest shows they carry the same
images, config hashes, health paths and ports as compose."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from obskit import bindings
from obskit.bindings import PORTS
from obskit.promote.ecs import SSM_ARN, tfvars
from obskit.images import image_plans
from obskit.render import component_hashes, render
from obskit.spec.load import load_spec

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"
GOLDEN = REPO / "tests" / "golden" / "aws"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.fixture(scope="module")
def prod():
    resolved = load_spec(FIXTURE, environ={})
    files = render(resolved, "prod")
    hashes = component_hashes(files)
    plans = image_plans(resolved.spec, "prod", files, hashes)
    return {"spec": resolved.spec, "files": files, "hashes": hashes, "plans": plans,
            "tfvars": tfvars(resolved.spec, "prod", plans, hashes, REGISTRY),
            "compose": yaml.safe_load(render(resolved, "local")["compose/docker-compose.yaml"])}


def _golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("OBSKIT_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"no golden {name}: run with OBSKIT_UPDATE_GOLDEN=1"
    assert data == path.read_bytes(), f"{name} differs from tests/golden/aws (OBSKIT_UPDATE_GOLDEN=1 to accept)"


def test_tfvars_golden(prod):
    _golden("prod.tfvars.json", (json.dumps(prod["tfvars"], indent=2, sort_keys=True) + "\n").encode())


def test_container_definitions_golden(prod):
    defs = {name: json.loads(s["container_definitions"]) for name, s in prod["tfvars"]["services"].items()}
    _golden("prod.container-definitions.json", (json.dumps(defs, indent=2, sort_keys=True) + "\n").encode())


def test_images_are_the_compose_images_plus_the_same_config_bytes(prod):
    compose = prod["compose"]["services"]
    for component, plan in prod["plans"].items():
        service = component if component != "mimir" else "mimir-1"
        assert plan.base == compose[service]["image"], component
        assert prod["tfvars"]["config_hashes"][component] == compose[service]["labels"]["dev.obskit.config-hash"]
        for rel, data in plan.files.items():
            assert data == prod["files"][rel]  # the rendered bytes, unchanged
        # Every config file of the component is in its image.
        assert set(plan.files) == {p for p in prod["files"] if p.startswith(f"configs/{component}/")}
        assert f"ARG BASE={plan.base}\nFROM ${{BASE}}\n" in plan.dockerfile
        assert prod["files"][plan.dockerfile_path] == plan.dockerfile.encode()  # rendered as it is built
    # The tag follows the content: same configs, same tag, in any environment.
    assert prod["plans"]["loki"].tag == image_plans(prod["spec"], "staging-like", prod["files"], prod["hashes"])["loki"].tag


def test_container_definitions_match_compose_ports_commands_and_health(prod):
    defs = {name: json.loads(s["container_definitions"]) for name, s in prod["tfvars"]["services"].items()}
    compose = prod["compose"]["services"]
    assert set(defs) == {"loki", "mimir-1", "mimir-2", "mimir-3", "otelcol", "grafana", "gateway"}
    for name, containers in defs.items():
        main = containers[0]
        component = bindings.services(prod["spec"], "prod")[name].component
        assert main["name"] == name and main["image"] == prod["plans"][component].uri(REGISTRY)
        if "command" in compose[name]:
            assert main["command"] == compose[name]["command"], name
        # An entrypoint compose gives the image (Grafana's CA wrapper) is ECS's entryPoint too.
        assert main.get("entryPoint") == compose[name].get("entrypoint"), name
        ports = {p["containerPort"] for p in main["portMappings"]}
        component = prod["tfvars"]["services"][name]["component"]
        assert ports <= set(PORTS[component].values()), name
    # Health: Loki checks itself; Mimir (distroless) is probed on /ready by a sidecar, never /-/healthy.
    assert defs["loki"][0]["healthCheck"]["command"] == compose["loki"]["healthcheck"]["test"]
    for replica in ("mimir-1", "mimir-2", "mimir-3"):
        probe = defs[replica][1]
        assert probe["name"] == f"{replica}-probe" and probe["essential"] is True
        assert "http://localhost:8080/ready" in probe["healthCheck"]["command"][1]
        assert "/-/healthy" not in json.dumps(defs[replica])
        # The probe runs obskit's gateway image from ECR (nginx with curl), never a public
        # registry image by a mutable tag.
        assert probe["image"] == prod["plans"]["gateway"].uri(REGISTRY)
    assert "http://localhost:13133/" in defs["otelcol"][1]["healthCheck"]["command"][1]
    assert prod["tfvars"]["services"]["mimir-1"]["health_path"] == "/ready"
    assert prod["tfvars"]["services"]["gateway"]["health_path"] == "/nginx-health"
    assert prod["tfvars"]["services"]["grafana"]["health_path"] == "/grafana/api/health"


def test_secrets_come_from_ssm_never_as_plain_environment(prod):
    defs = {name: json.loads(s["container_definitions"]) for name, s in prod["tfvars"]["services"].items()}
    for name, containers in defs.items():
        service = bindings.services(prod["spec"], "prod")[name]
        secret_vars = {k for k, b in service.env.items() if isinstance(b, bindings.Secret)}
        main = containers[0]
        assert {s["name"] for s in main["secrets"]} == secret_vars, name
        assert not secret_vars & {e["name"] for e in main["environment"]}
        for s in main["secrets"]:
            assert s["valueFrom"].startswith(SSM_ARN + "/obskit/obskit/prod/"), s
    grafana = {e["name"]: e["value"] for e in defs["grafana"][0]["environment"]}
    assert grafana["GF_DATABASE_HOST"] == "__OBSKIT_OUTPUT_grafana_database_endpoint__"
    assert prod["tfvars"]["database"]["password_parameter"] == "/obskit/obskit/prod/postgres-password"


def test_task_roles_reach_only_their_own_buckets(prod):
    services = prod["tfvars"]["services"]
    assert services["loki"]["buckets"] == ["acme-obs-prod-loki-chunks", "acme-obs-prod-loki-ruler"]
    assert services["mimir-2"]["buckets"] == ["acme-obs-prod-mimir-blocks", "acme-obs-prod-mimir-ruler",
                                              "acme-obs-prod-mimir-alertmanager"]
    assert services["grafana"]["buckets"] == [] and services["gateway"]["buckets"] == []


def test_loki_and_mimir_get_fargates_longest_stop_timeout_to_flush(prod):
    defs = {name: json.loads(s["container_definitions"]) for name, s in prod["tfvars"]["services"].items()}
    for name, containers in defs.items():
        from obskit.promote.components import components

        component = prod["tfvars"]["services"][name]["component"]
        assert containers[0]["stopTimeout"] == components(prod["spec"].grafana.sub_path)[component].stop_timeout, name
        if component in ("loki", "mimir"):
            assert containers[0]["stopTimeout"] == 120, name
        flush = {e["name"]: e["value"] for e in containers[0]["environment"]}
        assert flush.get("LOKI_FLUSH_ON_SHUTDOWN", flush.get("MIMIR_FLUSH_ON_SHUTDOWN", "true")) == "true", name


def test_grafana_may_reach_the_smtp_server_only_when_email_is_set(prod, aws_spec):
    assert prod["spec"].alerting.smtp.host.endswith(":587")
    assert prod["tfvars"]["grafana_egress_ports"] == [587]
    resolved = load_spec(aws_spec, environ={})  # no email contact point, no SMTP
    files = render(resolved, "prod")
    hashes = component_hashes(files)
    plain = tfvars(resolved.spec, "prod", image_plans(resolved.spec, "prod", files, hashes), hashes, REGISTRY)
    assert plain["grafana_egress_ports"] == []


def test_webhook_ports_written_in_the_spec_are_opened_too(aws_spec):
    from obskit.promote.ecs import grafana_egress_ports

    text = aws_spec.read_text() + (
        "alerting:\n  contact_points:\n"
        "    - {name: ops-hook, type: webhook, url: 'http://hooks.internal.example/alerts'}\n"
        "    - {name: audit, type: webhook, url: 'https://audit.example:8443/in'}\n"
        "    - {name: tokened, type: webhook, url: 'env:HOOK_URL'}\n"
        "    - {name: plain, type: webhook, url: 'https://hooks.example.com/x'}\n"
        "  policy: {receiver: ops-hook}\n")
    aws_spec.write_text(text)
    assert grafana_egress_ports(load_spec(aws_spec, environ={}).spec) == [80, 8443]


def test_sizes_come_from_the_spec(prod):
    env = prod["spec"].environments["prod"]
    for name, s in prod["tfvars"]["services"].items():
        size = getattr(env.sizes, s["component"])
        assert (s["cpu"], s["memory"]) == (size.cpu, size.memory)


def test_task_storage_comes_from_the_spec_with_defaults_and_fargates_bounds(aws_spec):
    from obskit.errors import ObskitError

    resolved = load_spec(aws_spec, environ={})
    files = render(resolved, "prod")
    hashes = component_hashes(files)
    tv = tfvars(resolved.spec, "prod", image_plans(resolved.spec, "prod", files, hashes), hashes, REGISTRY)
    assert {n: s["ephemeral_storage_gib"] for n, s in tv["services"].items() if s["ephemeral_storage_gib"]} == \
        {"loki": 40, "mimir-1": 50, "mimir-2": 50, "mimir-3": 50}
    text = aws_spec.read_text()
    aws_spec.write_text(text.replace("    kind: aws\n", "    kind: aws\n    sizes: {loki: {cpu: 1024, memory: 4096, ephemeral_storage_gib: 120}}\n", 1))
    resolved = load_spec(aws_spec, environ={})
    files = render(resolved, "prod")
    tv = tfvars(resolved.spec, "prod", image_plans(resolved.spec, "prod", files, component_hashes(files)),
                component_hashes(files), REGISTRY)
    assert tv["services"]["loki"]["ephemeral_storage_gib"] == 120
    for bad in (20, 201):
        aws_spec.write_text(text.replace("    kind: aws\n", f"    kind: aws\n    sizes: {{mimir: {{ephemeral_storage_gib: {bad}}}}}\n", 1))
        with pytest.raises(ObskitError, match="ephemeral_storage_gib"):
            load_spec(aws_spec, environ={})
