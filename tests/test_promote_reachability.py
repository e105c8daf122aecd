"""Who may talk to whom on AWS, as a model (not AWS): from the rendered task definitions,
the security-group rule table and the VPC endpoint list, every flow each task needs is
computed and must be allowed, and every rule must serve a needed flow.

A task on Fargate needs: its images from ECR (ecr.api, ecr.dkr, and the layers from S3), its
secrets from SSM, its logs to CloudWatch Logs (all through its own network interface), S3 for
Loki's and Mimir's data, every peer address its environment names (host.<namespace>:port),
its ring's gRPC and gossip ports, and, for Grafana, its database and notification targets.
The ALB takes HTTPS and HTTP from the internet and reaches the gateway.

The rule table (terraform/modules/security_groups/rules.tf) and the endpoint list
(terraform/endpoints.tf) are evaluated by terraform itself, so the model reads what
Terraform would create. DNS goes to the VPC resolver, which security groups do not filter."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass

import hcl2
import pytest

from obskit.promote.ecs import tfvars as render_tfvars
from obskit.images import image_plans
from obskit.render import component_hashes, render
from obskit.spec.load import load_spec

from conftest import REPO, require_tool

TF = REPO / "terraform"
FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/")
ANYWHERE = "0.0.0.0/0"


def console(folder, expression: str, tfvars: dict | None = None) -> object:
    """Evaluate ``expression`` with terraform in ``folder`` (variables and locals only: no
    provider, no init)."""
    args = ["terraform", "console"]
    if tfvars is not None:
        (folder / "in.tfvars.json").write_text(json.dumps(tfvars))
        args.append("-var-file=in.tfvars.json")
    proc = subprocess.run(args, input=f"jsonencode({expression})\n", cwd=folder, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin:/usr/local/bin", "TF_CLI_CONFIG_FILE": "/dev/null",
                                            "HOME": str(folder)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(json.loads(proc.stdout))


@pytest.fixture(scope="module")
def inputs():
    resolved = load_spec(FIXTURE, environ={})
    files = render(resolved, "prod")
    hashes = component_hashes(files)
    plans = image_plans(resolved.spec, "prod", files, hashes)
    return {"spec": resolved.spec, "tfvars": render_tfvars(resolved.spec, "prod", plans, hashes, REGISTRY)}


@pytest.fixture(scope="module")
def network(inputs, tmp_path_factory):
    """The rules and the endpoints, as terraform evaluates them for these inputs."""
    require_tool("terraform", "install terraform to run this test")
    sg = tmp_path_factory.mktemp("sg")
    for name in ("rules.tf", "variables.tf"):
        shutil.copy(TF / "modules" / "security_groups" / name, sg / name)
    rules = console(sg, "local.rules", {"name": "x", "vpc_id": "vpc-1", "s3_prefix_list_id": "pl-s3",
                                        "grafana_egress_ports": inputs["tfvars"]["grafana_egress_ports"]})
    root = tmp_path_factory.mktemp("root")
    for name in ("endpoints.tf", "variables.tf"):
        shutil.copy(TF / name, root / name)
    endpoints = console(root, "local.interface_endpoints", inputs["tfvars"])
    return {"rules": rules, "endpoints": endpoints}


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Flow:
    src: str  # a role (security group), or "internet"
    dst: str  # a role, "endpoint:<service>", "s3" or "internet"
    port: int
    protocol: str
    why: str

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}:{self.port}/{self.protocol} ({self.why})"


def needed_flows(tfvars: dict, spec) -> list[Flow]:
    """Every flow the rendered tasks need, derived from what they run."""
    services = tfvars["services"]
    ns = tfvars["service_namespace"]
    defs = {name: json.loads(s["container_definitions"]) for name, s in services.items()}
    ports = {name: {(p["containerPort"], p["protocol"]) for c in containers for p in c.get("portMappings", [])}
             for name, containers in defs.items()}
    flows: list[Flow] = []
    for name, containers in defs.items():
        role = services[name]["component"]
        for c in containers:
            if ECR_IMAGE.match(c["image"]):
                flows += [Flow(role, "endpoint:ecr.api", 443, "tcp", f"{c['name']}: image manifest"),
                          Flow(role, "endpoint:ecr.dkr", 443, "tcp", f"{c['name']}: image pull"),
                          Flow(role, "s3", 443, "tcp", f"{c['name']}: image layers")]
            else:
                flows.append(Flow(role, "internet", 443, "tcp", f"{c['name']}: image {c['image']} from a public registry"))
            if any(s["valueFrom"].startswith("__OBSKIT_SSM_ARN__") for s in c.get("secrets", [])):
                flows.append(Flow(role, "endpoint:ssm", 443, "tcp", f"{c['name']}: secrets"))
            if c.get("logConfiguration", {}).get("logDriver") == "awslogs":
                flows.append(Flow(role, "endpoint:logs", 443, "tcp", f"{c['name']}: logs"))
        env = {e["name"]: e["value"] for e in containers[0].get("environment", [])}
        for var, value in env.items():
            if var == "S3_ENDPOINT" and value.endswith(".amazonaws.com"):
                flows.append(Flow(role, "s3", 443, "tcp", f"{name}: {var}"))
            if value == "__OBSKIT_OUTPUT_grafana_database_endpoint__":
                flows.append(Flow(role, "rds", 5432, "tcp", f"{name}: {var}"))
            m = re.match(rf"^(?:https?://)?([a-z0-9-]+)\.{re.escape(ns)}:(\d+)", value)
            if not m:
                continue
            peer, port = m.group(1), int(m.group(2))
            assert peer in services, f"{name}: {var} names {peer}, which is no service"
            protocols = {proto for p, proto in ports[peer] if p == port}
            if "MEMBERLIST" in var:
                protocols |= {"tcp", "udp"}  # memberlist gossips over both
            assert protocols, f"{name}: {var} names {peer}:{port}, which {peer} does not serve"
            for proto in sorted(protocols):
                flows.append(Flow(role, services[peer]["component"], port, proto, f"{name}: {var}"))
        # Ring members talk gRPC to the addresses they advertise.
        if any("MEMBERLIST_JOIN" in var for var in env):
            for var, value in env.items():
                if var.endswith("_GRPC_PORT"):
                    flows.append(Flow(role, role, int(value), "tcp", f"{name}: ring gRPC ({var})"))
    # Grafana's notifications: HTTPS, and the ports of the SMTP server and webhook URLs.
    if spec.alerting.contact_points:
        flows.append(Flow("grafana", "internet", 443, "tcp", "notifications"))
    flows += [Flow("grafana", "internet", p, "tcp", "notifications") for p in tfvars["grafana_egress_ports"]]
    # The public entry.
    gateway = services["gateway"]["port"]
    flows += [Flow("internet", "alb", 443, "tcp", "HTTPS clients"), Flow("internet", "alb", 80, "tcp", "HTTP redirect"),
              Flow("alb", "gateway", gateway, "tcp", "the ALB's target")]
    return sorted(set(flows), key=str)


def check(flows: list[Flow], rules: dict, endpoints: list[str]) -> tuple[list[str], list[str]]:
    """(flows that are not allowed, rules that no flow needs)."""
    used: set[str] = set()
    missing: list[str] = []

    def find(role: str, ingress: bool, port: int, protocol: str, kinds: list[tuple[str, str]]) -> str | None:
        for kind, peer in kinds:  # the most specific kind first
            for key, r in sorted(rules.items()):
                if (r["role"], r["ingress"], r["port"], r["protocol"], r["kind"]) == (role, ingress, port, protocol, kind) \
                        and (kind in ("self", "prefix") or r["peer"] == peer):
                    return key
        return None

    for f in flows:
        found: list[str | None] = []
        if f.src == "internet":
            found.append(find(f.dst, True, f.port, f.protocol, [("cidr", ANYWHERE)]))
        elif f.dst == "s3":
            found.append(find(f.src, False, f.port, f.protocol, [("prefix", "")]))
        elif f.dst == "internet":
            found.append(find(f.src, False, f.port, f.protocol, [("cidr", ANYWHERE)]))
        elif f.dst.startswith("endpoint:"):
            if f.dst.split(":", 1)[1] not in endpoints:
                missing.append(f"{f}: no VPC endpoint for {f.dst.split(':', 1)[1]}")
                continue
            found.append(find(f.src, False, f.port, f.protocol, [("sg", "endpoints")]))
            found.append(find("endpoints", True, f.port, f.protocol, [("sg", f.src)]))
        else:
            same = f.src == f.dst
            found.append(find(f.src, False, f.port, f.protocol, [("self", "")] if same else [("sg", f.dst)]))
            found.append(find(f.dst, True, f.port, f.protocol, [("self", "")] if same else [("sg", f.src)]))
        if None in found:
            missing.append(str(f))
        used.update(k for k in found if k)
    return missing, sorted(set(rules) - used)


# --------------------------------------------------------------------------- tests


def test_every_needed_flow_is_allowed_and_nothing_else_is_open(inputs, network):
    flows = needed_flows(inputs["tfvars"], inputs["spec"])
    missing, unused = check(flows, network["rules"], network["endpoints"])
    assert missing == [], "not allowed:\n" + "\n".join(missing)
    assert unused == [], "open, but no task needs it:\n" + "\n".join(unused)
    # The model covers what the issue named: image pull, secrets, logs, S3 and peers for every task.
    for role in ("gateway", "grafana", "loki", "mimir", "otelcol"):
        dsts = {f.dst for f in flows if f.src == role}
        assert {"endpoint:ecr.api", "endpoint:ecr.dkr", "endpoint:logs", "s3"} <= dsts, role
        assert ("endpoint:ssm" in dsts) == (role not in ("loki", "mimir")), role  # those two read no secret
    assert Flow("mimir", "mimir", 7946, "udp", "") in [Flow(f.src, f.dst, f.port, f.protocol, "") for f in flows]
    assert not [f for f in flows if f.dst == "internet" and f.src != "grafana"]  # only Grafana goes out


@pytest.mark.parametrize("remove", ["each rule"])
def test_removing_any_one_rule_is_caught(inputs, network, remove):
    """Each rule is needed: drop any one of them and the model names a flow it blocks."""
    flows = needed_flows(inputs["tfvars"], inputs["spec"])
    assert len(network["rules"]) > 40
    for key in network["rules"]:
        rules = {k: v for k, v in network["rules"].items() if k != key}
        missing, _ = check(flows, rules, network["endpoints"])
        assert missing, f"removing {key} went unnoticed"
    # One spelled out: without the loki egress to the endpoints, Loki cannot pull its image
    # (the ResourceInitializationError of the issue).
    rules = {k: v for k, v in network["rules"].items() if k != "loki-out-sg-endpoints-443-tcp"}
    missing, _ = check(flows, rules, network["endpoints"])
    assert any(m.startswith("loki -> endpoint:ecr.dkr:443/tcp") for m in missing), missing


def test_a_missing_endpoint_or_an_extra_rule_is_caught(inputs, network):
    flows = needed_flows(inputs["tfvars"], inputs["spec"])
    missing, _ = check(flows, network["rules"], [e for e in network["endpoints"] if e != "logs"])
    assert any("no VPC endpoint for logs" in m for m in missing)
    extra = dict(network["rules"], **{"loki-out-cidr-anywhere-443-tcp": {
        "role": "loki", "ingress": False, "kind": "cidr", "peer": ANYWHERE, "port": 443, "protocol": "tcp", "description": "x"}})
    _, unused = check(flows, extra, network["endpoints"])
    assert unused == ["loki-out-cidr-anywhere-443-tcp"]


def test_an_image_from_a_public_registry_needs_the_internet_and_is_refused(inputs, network):
    """The issue's health sidecars pulled nginx from Docker Hub: no rule lets Mimir out."""
    tfvars = json.loads(json.dumps(inputs["tfvars"]))
    defs = json.loads(tfvars["services"]["mimir-1"]["container_definitions"])
    defs[1]["image"] = "nginx:1.30.5"
    tfvars["services"]["mimir-1"]["container_definitions"] = json.dumps(defs)
    missing, _ = check(needed_flows(tfvars, inputs["spec"]), network["rules"], network["endpoints"])
    assert missing == ["mimir -> internet:443/tcp (mimir-1-probe: image nginx:1.30.5 from a public registry)"]


def test_ecs_exec_adds_its_endpoint(inputs, network, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name in ("endpoints.tf", "variables.tf"):
        shutil.copy(TF / name, root / name)
    assert "ssmmessages" not in network["endpoints"]
    assert "ssmmessages" in console(root, "local.interface_endpoints", dict(inputs["tfvars"], ecs_exec=True))


def test_the_resources_follow_the_table():
    """What the model assumes about the resources: the table's rules become ingress and
    egress rules by their direction, each ECS service gets its component's group, the
    endpoints sit in the ECS subnets with their group, and S3 is a gateway endpoint on the
    ECS route tables."""
    sg = hcl2.load((TF / "modules" / "security_groups" / "main.tf").open())
    res = {}
    for block in sg["resource"]:
        for kind, named in block.items():
            res[kind.strip('"')] = named['"this"']
    assert res["aws_vpc_security_group_ingress_rule"]["for_each"] == "${{for k, r in local.rules : k => r if r.ingress}}"
    assert res["aws_vpc_security_group_egress_rule"]["for_each"] == "${{for k, r in local.rules : k => r if !r.ingress}}"
    assert res["aws_security_group"]["for_each"] == "${local.roles}"
    ecs = (TF / "modules" / "ecs" / "main.tf").read_text()
    assert ecs.count("security_groups  = [var.security_group_ids[each.value.component]]") == ecs.count('resource "aws_ecs_service"') == 4
    net = hcl2.load((TF / "modules" / "network" / "main.tf").open())
    endpoints = {name.strip('"'): body for block in net["resource"] for kind, named in block.items()
                 if kind.strip('"') == "aws_vpc_endpoint" for name, body in named.items()}
    assert endpoints["s3"]["vpc_endpoint_type"] == '"Gateway"' and endpoints["s3"]["route_table_ids"] == "${aws_route_table.ecs[*].id}"
    interface = endpoints["interface"]
    assert interface["private_dns_enabled"] is True and interface["subnet_ids"] == "${aws_subnet.ecs[*].id}"
    assert interface["security_group_ids"] == ["${var.endpoint_security_group_id}"]
    root = (TF / "main.tf").read_text()
    assert "endpoint_security_group_id = module.security_groups.endpoints" in root
    assert "interface_endpoints        = local.interface_endpoints" in root
