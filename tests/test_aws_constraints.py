"""A model of AWS's own rules, where moto is lenient.

moto accepts a security-group rule description with an apostrophe, an ECS environment entry
with an empty value, and any order of creation and deletion; AWS does not. Each check below
states one rule AWS documents, cites where, and applies it to what obskit renders (the
tfvars, the container definitions, the gateway's nginx config) and to what Terraform would
evaluate or order (the rule table through `terraform console`; the dependency graph of
terraform/ read with python-hcl2).

The dependency graph: Terraform creates a resource after everything it references (and
everything in its depends_on), and destroys it before them. Edges come from references
inside a block, depends_on, a module's input variables (the root's arguments) and its
outputs (their value and depends_on). `depends(a, b)` is "a is created after b and
destroyed before b".

Each check's fault was injected once and seen to fail it (see the report in the commit
history): an apostrophe in a rule description, an empty environment value, and a missing
depends_on edge; tests marked `_catches_` do the same with a copy of the data, every run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import hcl2
import pytest

from obskit.images import image_plans
from obskit.promote.ecs import tfvars as render_tfvars
from obskit.render import component_hashes, render
from obskit.spec.load import load_spec

from conftest import REPO, require_tool

TF = REPO / "terraform"
FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.fixture(scope="module")
def prod():
    resolved = load_spec(FIXTURE, environ={})
    files = render(resolved, "prod")
    hashes = component_hashes(files)
    plans = image_plans(resolved.spec, "prod", files, hashes)
    tfvars = render_tfvars(resolved.spec, "prod", plans, hashes, REGISTRY)
    return {"spec": resolved.spec, "files": files, "tfvars": tfvars,
            "defs": {n: json.loads(s["container_definitions"]) for n, s in tfvars["services"].items()}}


def console(folder: Path, expression: str, tfvars: dict | None = None) -> object:
    """Evaluate ``expression`` with terraform in ``folder`` (variables and locals only)."""
    args = ["terraform", "console"]
    if tfvars is not None:
        (folder / "in.tfvars.json").write_text(json.dumps(tfvars))
        args.append("-var-file=in.tfvars.json")
    proc = subprocess.run(args, input=f"jsonencode({expression})\n", cwd=folder, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin:/usr/local/bin", "TF_CLI_CONFIG_FILE": "/dev/null",
                                            "HOME": str(folder)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(json.loads(proc.stdout))


# =========================================================================== names and text

# EC2 API reference, IpPermission/IpRange/UserIdGroupPair "Description" and
# AuthorizeSecurityGroupIngress: "Constraints: Up to 255 characters in length. Allowed
# characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*". The same set and length
# hold for a VPC security group's GroupName and GroupDescription (CreateSecurityGroup).
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpRange.html
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html
SG_TEXT = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}$")


def sg_text_faults(texts: dict[str, str]) -> list[str]:
    return [f"{where}: {text!r}" for where, text in texts.items() if not SG_TEXT.match(text)]


@pytest.fixture(scope="module")
def rule_table(prod, tmp_path_factory):
    require_tool("terraform", "install terraform to run this test")
    sg = tmp_path_factory.mktemp("sg")
    for name in ("rules.tf", "variables.tf"):
        shutil.copy(TF / "modules" / "security_groups" / name, sg / name)
    tfvars = {"name": "x", "vpc_id": "vpc-1", "s3_prefix_list_id": "pl-s3",
              "grafana_egress_ports": sorted(set(prod["tfvars"]["grafana_egress_ports"]) | {587})}
    return {"rules": console(sg, "local.rules", tfvars), "roles": console(sg, "local.roles", tfvars)}


def test_security_group_texts_use_only_what_ec2_accepts(prod, rule_table):
    texts = {f"rule {k}": r["description"] for k, r in rule_table["rules"].items()}
    texts |= {f"group {k} description": d for k, d in rule_table["roles"].items()}
    name = f"{prod['tfvars']['project']}-{prod['tfvars']['environment']}"
    # name_prefix "<name>-<role>-" plus the 26 characters Terraform appends.
    texts |= {f"group {k} name": f"{name}-{k}-" + "0" * 26 for k in rule_table["roles"]}
    assert not sg_text_faults(texts)


def test_the_description_check_catches_an_apostrophe(rule_table):
    rules = {k: r["description"] for k, r in rule_table["rules"].items()}
    rules["alb-out-sg-gateway-gateway_https-tcp"] = "to the gateway's TLS listener"
    assert sg_text_faults(rules) == ["alb-out-sg-gateway-gateway_https-tcp: \"to the gateway's TLS listener\""]


# Elastic Load Balancing, CreateLoadBalancer / CreateTargetGroup "Name": at most 32
# characters, alphanumeric and hyphens, not beginning or ending with a hyphen (and a load
# balancer's not beginning with "internal-"). The provider's name_prefix takes at most 6.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
ELB_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$")


def test_load_balancer_and_target_group_names(prod):
    name = f"{prod['tfvars']['project']}-{prod['tfvars']['environment']}"
    assert ELB_NAME.match(name) and not name.startswith("internal-")
    lb = hcl2.load((TF / "modules" / "load_balancer" / "main.tf").open())
    tg = next(b['"aws_lb_target_group"']['"this"'] for b in lb["resource"] if '"aws_lb_target_group"' in b)
    assert tg["name_prefix"] == '"${substr(each.key, 0, 5)}-"'
    root = (TF / "main.tf").read_text()
    targets = re.search(r"targets = \{\n(.*?)\n  \}", root, re.S).group(1)
    for key in re.findall(r"^    (\w+) = \{", targets, re.M):
        prefix = key[:5] + "-"
        assert len(prefix) <= 6 and re.match(r"^[a-zA-Z0-9][a-zA-Z0-9-]*$", prefix), key
        assert ELB_NAME.match(prefix + "0" * (32 - len(prefix))), key


# IAM: role names at most 64 characters of [\w+=,.@-].
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
# CloudWatch Logs: log group names 1-512 of [\.\-_/#A-Za-z0-9].
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
# ECS: service names and container names up to 255 letters, numbers, hyphens, underscores.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html
# Cloud Map: a service name is a DNS label here (private DNS namespace): 1-63 of [a-z0-9-].
# https://docs.aws.amazon.com/cloud-map/latest/api/API_CreateService.html
# S3: bucket names 3-63 of lowercase letters, digits, dots and hyphens, starting and ending
# with a letter or digit. https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
def test_role_log_group_service_and_bucket_names(prod):
    tv = prod["tfvars"]
    name = f"{tv['project']}-{tv['environment']}"
    roles = [f"{name}-ecs-execution", f"{name}-vpc-flow-logs", *(f"{name}-{s}" for s in tv["services"])]
    for role in roles:
        assert re.match(r"^[\w+=,.@-]{1,64}$", role), role
    for service, containers in prod["defs"].items():
        assert re.match(r"^[a-zA-Z0-9_-]{1,255}$", service) and re.match(r"^[a-z0-9-]{1,63}$", service), service
        for c in containers:
            assert re.match(r"^[a-zA-Z0-9_-]{1,255}$", c["name"]), c["name"]
            group = c["logConfiguration"]["options"]["awslogs-group"]
            assert re.match(r"^[.\-_/#A-Za-z0-9]{1,512}$", group), group
    for bucket in [*tv["buckets"].values(), *filter(None, [tv["alb_access_logs_bucket"]])]:
        assert re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket), bucket
    for repo in tv["ecr_repositories"]:
        assert 2 <= len(repo) <= 256 and re.match(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$", repo), repo


# ECR: repository names 2-256 of lowercase path components separated by "/", each of
# [a-z0-9] groups joined by ".", "_" or "-". https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html
# Tags: keys 1-128 and values 0-256 Unicode letters, digits, spaces and _.:/=+-@; the
# "aws:" prefix is reserved. https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html
TAG = re.compile(r"^[\w\s.:/=+\-@]*$")


def test_tags(prod):
    tv = prod["tfvars"]
    main = (TF / "main.tf").read_text()
    keys = re.findall(r'^\s+"([^"]+)"\s+= ', re.search(r"default_tags \{(.*?)\n  \}", main, re.S).group(1), re.M)
    assert keys == ["obskit:project", "obskit:environment", "managed-by"]
    values = [tv["project"], tv["environment"], "obskit", *tv["buckets"].values(), *tv["buckets"]]
    for key in keys:
        assert 1 <= len(key) <= 128 and TAG.match(key) and not key.lower().startswith("aws:"), key
    for value in values:
        assert len(value) <= 256 and TAG.match(value), value


# =========================================================================== containers

# ECS drops an environment entry whose value is empty; the provider does not normalise that
# (hashicorp/terraform-provider-aws issue 11526, open), so the container definitions, which
# force a new task definition, differ at every plan: every apply redeploys the service.
# https://github.com/hashicorp/terraform-provider-aws/issues/11526
def empty_values(defs: dict[str, list[dict]]) -> list[str]:
    return [f"{service}/{c['name']}: {e['name']}" for service, containers in defs.items() for c in containers
            for e in c.get("environment", []) if e.get("value") in ("", None)]


def test_no_container_has_an_empty_environment_value(prod):
    assert not empty_values(prod["defs"])


def test_the_empty_value_check_catches_one(prod):
    defs = json.loads(json.dumps(prod["defs"]))
    for containers in defs.values():
        for c in containers:
            c["environment"] = [e for e in c.get("environment", []) if e.get("value")]
    defs["loki"][0]["environment"].append({"name": "S3_ACCESS_KEY_ID", "value": ""})
    assert empty_values(defs) == ["loki/loki: S3_ACCESS_KEY_ID"]


# ECS HealthCheck: interval 5-300 s, timeout 2-60 s, retries 1-10, startPeriod 0-300 s.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html
# Fargate ephemeral storage: 21-200 GiB (20 GiB when unset).
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_EphemeralStorage.html
def test_container_health_checks_and_storage(prod):
    for service, containers in prod["defs"].items():
        for c in containers:
            hc = c.get("healthCheck")
            if hc:
                assert hc["command"][0] in ("CMD", "CMD-SHELL"), (service, c["name"])
                assert 5 <= hc["interval"] <= 300 and 2 <= hc["timeout"] <= 60 and hc["timeout"] < hc["interval"]
                assert 1 <= hc["retries"] <= 10 and 0 <= hc["startPeriod"] <= 300
        size = prod["tfvars"]["services"][service].get("ephemeral_storage_gib")
        assert size is None or 21 <= size <= 200, (service, size)


# ELB target group health checks: protocol HTTP or HTTPS for an HTTP(S) target; the port is
# the traffic port; the path starts with "/" (at most 1024 characters); the timeout is less
# than the interval; thresholds 2-10; matcher codes 200-499.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
def test_target_group_health_check(prod):
    lb = hcl2.load((TF / "modules" / "load_balancer" / "main.tf").open())
    tg = next(b['"aws_lb_target_group"']['"this"'] for b in lb["resource"] if '"aws_lb_target_group"' in b)
    hc = tg["health_check"][0]
    assert hc["protocol"] == "${each.value.protocol}" and "port" not in hc  # the traffic port
    assert hc["timeout"] < hc["interval"] and 2 <= hc["healthy_threshold"] <= 10 and 2 <= hc["unhealthy_threshold"] <= 10
    gw = prod["tfvars"]["services"]["gateway"]
    assert gw["health_path"].startswith("/") and len(gw["health_path"]) <= 1024
    gateway = next(c for c in prod["defs"]["gateway"] if c["name"] == "gateway")
    assert gw["port"] in {p["containerPort"] for p in gateway["portMappings"]}
    main = (TF / "main.tf").read_text()
    assert 'protocol      = "HTTPS"' in main  # the gateway's port is its TLS listener


# =========================================================================== keep-alive

# ELB: "We recommend that you configure the idle timeout of your application to be larger
# than the idle timeout configured for the load balancer", with HTTP keep-alive on, so the
# load balancer, never the target, closes an idle connection (else a request on a
# connection the target just closed gets a 502).
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#connection-idle-timeout
def alb_idle_timeout() -> int:
    variables = hcl2.load((TF / "modules" / "load_balancer" / "variables.tf").open())
    default = next(v['"idle_timeout"']["default"] for v in variables["variable"] if '"idle_timeout"' in v)
    assert "idle_timeout" not in re.search(r'module "load_balancer" \{(.*?)\n\}', (TF / "main.tf").read_text(),
                                           re.S).group(1), "the root sets idle_timeout: read it here"
    return int(default)


def nginx_seconds(conf: str, directive: str) -> list[int]:
    return [int(v) for v in re.findall(rf"^\s*{directive} (\d+)s;", conf, re.M)]


def keepalive_faults(alb_idle: int, conf: str) -> list[str]:
    faults = []
    keepalive = nginx_seconds(conf, "keepalive_timeout")
    if len(keepalive) != 1 or keepalive[0] <= alb_idle:
        faults.append(f"gateway keepalive_timeout {keepalive} must be longer than the ALB idle timeout {alb_idle}")
    # The ALB must not cut a request the gateway still waits for (a long query).
    for read in nginx_seconds(conf, "proxy_read_timeout"):
        if read > alb_idle:
            faults.append(f"proxy_read_timeout {read}s outlasts the ALB idle timeout {alb_idle}s")
    return faults


def test_the_gateway_keeps_connections_longer_than_the_alb(prod):
    conf = prod["files"]["configs/gateway/templates/nginx.conf.template"].decode()
    assert not keepalive_faults(alb_idle_timeout(), conf)


def test_the_keepalive_check_catches_the_wrong_order(prod):
    conf = prod["files"]["configs/gateway/templates/nginx.conf.template"].decode()
    wrong = re.sub(r"keepalive_timeout \d+s;", "keepalive_timeout 75s;", conf)
    right = re.sub(r"keepalive_timeout \d+s;", "keepalive_timeout 310s;", conf)
    assert keepalive_faults(300, wrong) and not keepalive_faults(300, right)
    assert keepalive_faults(60, right) == ["proxy_read_timeout 300s outlasts the ALB idle timeout 60s"]


# =========================================================================== ordering


REF = re.compile(r"(?<![\w.])(module\.[\w-]+\.[\w-]+|var\.\w+|local\.\w+|data\.\w+\.[\w-]+|ephemeral\.\w+\.[\w-]+"
                 r"|aws_\w+\.[\w-]+|terraform_data\.[\w-]+)")


def _unquote(s: str) -> str:
    return s.strip('"')


@lru_cache(maxsize=1)
def graph() -> dict[str, set[str]]:
    """node -> the nodes it depends on. Nodes are "<module>:<address>", the root's module
    being "" (e.g. "ecs:aws_ecs_service.this", "ecs:var.load_balanced", "load_balancer:output.x")."""
    edges: dict[str, set[str]] = {}
    # Modules are named as the root calls them (module "rds" is modules/rds_grafana).
    calls = {_unquote(name): body for path in TF.glob("*.tf") for block in hcl2.load(path.open()).get("module", [])
             for name, body in block.items()}
    folders = {"": TF} | {name: (TF / _unquote(body["source"])).resolve() for name, body in calls.items()}

    def refs(mod: str, body) -> set[str]:
        out = set()
        for ref in REF.findall(json.dumps(body)):
            if ref.startswith("module."):
                _, child, output = ref.split(".")
                out.add(f"{child}:output.{output}")
            else:
                parts = ref.split(".")
                out.add(f"{mod}:{'.'.join(parts[:3] if parts[0] in ('data', 'ephemeral') else parts[:2])}")
        return out

    for mod, folder in folders.items():
        for path in sorted(folder.glob("*.tf")):
            doc = hcl2.load(path.open())
            for kind in ("resource", "data", "ephemeral"):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        for name, body in named.items():
                            prefix = "" if kind == "resource" else kind + "."
                            edges.setdefault(f"{mod}:{prefix}{_unquote(rtype)}.{_unquote(name)}", set()).update(refs(mod, body))
            for block in doc.get("locals", []):
                for name, value in block.items():
                    if not name.startswith("__"):
                        edges.setdefault(f"{mod}:local.{name}", set()).update(refs(mod, value))
            for block in doc.get("output", []):
                for name, body in block.items():
                    edges.setdefault(f"{mod}:output.{_unquote(name)}", set()).update(refs(mod, body))
            for block in doc.get("module", []):
                for name, body in block.items():
                    child = _unquote(name)
                    extra = refs(mod, body.get("depends_on", []))
                    for arg, value in body.items():
                        if arg in ("source", "depends_on") or arg.startswith("__"):
                            continue
                        edges.setdefault(f"{child}:var.{arg}", set()).update(refs(mod, value) | extra)
    return edges


def depends(a: str, b: str, edges: dict[str, set[str]] | None = None) -> bool:
    """Whether ``a`` (transitively) depends on ``b``: created after it, destroyed before it."""
    edges = graph() if edges is None else edges
    seen, todo = set(), [a]
    while todo:
        node = todo.pop()
        for nxt in edges.get(node, ()):
            if nxt == b:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


SERVICES = ("ecs:aws_ecs_service.this", "ecs:aws_ecs_service.scaled", "ecs:aws_ecs_service.rolled")
# The services that may sit behind the ALB (Mimir's replicas, aws_ecs_service.rolled, have no
# load_balancer block: test_promote_roll checks that resource).
LOAD_BALANCED = ("ecs:aws_ecs_service.this", "ecs:aws_ecs_service.scaled")

# (what, needs, why and where AWS says so)
REQUIRED_ORDER = [
    # ECS CreateService with a target group that no listener uses fails: "The target group ...
    # does not have an associated load balancer". The HTTPS listener waits for ACM validation.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb.html ("create the
    # listener and target group before the service"); provider docs of aws_ecs_service
    # ("add a depends_on on the aws_lb_listener").
    *((s, "load_balancer:aws_lb_listener.https", "listener before the service") for s in LOAD_BALANCED),
    # Task definitions name the execution role; ECS uses its permissions (ECR pull, SSM
    # secrets, logs) when a task starts. IAM is eventually consistent: the policies must
    # exist before anything can start a task with the role.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html
    ("ecs:aws_ecs_task_definition.this", "ecs:aws_iam_role_policy.secrets", "execution role policy before use"),
    ("ecs:aws_ecs_task_definition.this", "ecs:aws_iam_role_policy_attachment.execution", "execution role policy before use"),
    # ALB access logs: the bucket policy must grant ELB log delivery before the attribute is
    # set, or ModifyLoadBalancerAttributes fails with "Access Denied for bucket".
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
    ("load_balancer:aws_lb.this", "storage:aws_s3_bucket_policy.access_logs", "bucket policy before access logs"),
    # Destroy: Loki and Mimir flush to S3 when their tasks stop (stopTimeout 120 s); what the
    # flush needs must outlive the services: the task role's S3 and KMS permissions, the S3
    # egress rules, the S3 gateway endpoint and the ECS subnets' association with its route
    # table. (Deleting a service stops its tasks: ECS DeleteService.)
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html
    *((s, dep, "flush needs outlive the service") for s in SERVICES for dep in (
        "ecs:aws_iam_role_policy.buckets",
        "security_groups:aws_vpc_security_group_egress_rule.this",
        "network:aws_vpc_endpoint.s3",
        "network:aws_route_table_association.ecs",
        "storage:aws_s3_bucket_policy.this",
        "storage:aws_kms_key.this",
    )),
    # Cloud Map: a service with registered instances refuses DeleteService
    # (ResourceInUse); ECS deregisters the tasks when its service goes.
    # https://docs.aws.amazon.com/cloud-map/latest/api/API_DeleteService.html
    *((s, "service_discovery:aws_service_discovery_service.this", "ECS service before Cloud Map service")
      for s in SERVICES),
]


@pytest.mark.parametrize("what,needs,why", REQUIRED_ORDER, ids=[f"{w}<-{n}" for w, n, _ in REQUIRED_ORDER])
def test_required_order(what, needs, why):
    assert what in graph(), f"{what} is not in terraform/"
    assert needs in graph(), f"{needs} is not in terraform/"
    assert depends(what, needs), f"{what} does not wait for {needs} ({why})"


def test_the_order_check_catches_a_missing_edge():
    """Without the depends_on of the task definitions, the edge to the execution role's
    policy is gone."""
    edges = {k: set(v) for k, v in graph().items()}
    edges["ecs:aws_ecs_task_definition.this"] -= {"ecs:aws_iam_role_policy.secrets"}
    assert not depends("ecs:aws_ecs_task_definition.this", "ecs:aws_iam_role_policy.secrets", edges)


def test_only_grafana_waits_for_the_database():
    """Aurora takes many minutes: only Grafana's task definition and service wait for it."""
    assert depends("ecs:aws_ecs_task_definition.needs_outputs", "rds:aws_rds_cluster.this") or \
        depends("ecs:aws_ecs_service.needs_outputs", "rds:aws_rds_cluster.this")
    for node in ("ecs:aws_ecs_task_definition.this", *SERVICES):
        assert not depends(node, "rds:aws_rds_cluster.this"), node


def test_cloud_map_services_can_be_deleted_with_instances_left():
    sd = hcl2.load((TF / "modules" / "service_discovery" / "main.tf").open())
    svc = next(b['"aws_service_discovery_service"']['"this"'] for b in sd["resource"] if '"aws_service_discovery_service"' in b)
    assert svc.get("force_destroy") is True


# =========================================================================== trust


@pytest.mark.parametrize("vpc", ["10.40.0.0/16", "172.20.0.0/18", "192.168.32.0/19"])
def test_the_gateway_trusts_x_forwarded_for_from_the_alb_subnets_only(vpc, tmp_path):
    """The ALB's nodes are in the public subnets; the gateway's trusted block is exactly
    those two subnets as terraform's network module cuts them, and holds no task subnet."""
    from ipaddress import IPv4Network

    from obskit.bindings import alb_subnets

    require_tool("terraform", "install terraform to run this test")
    net = hcl2.load((TF / "modules" / "network" / "main.tf").open())
    cut = next(b for b in net["locals"])
    expressions = {k: cut[k] for k in ("public_cidrs", "ecs_cidrs", "db_cidrs")}
    (tmp_path / "main.tf").write_text('variable "cidr" {\n  type = string\n}\n\nlocals {\n' + "".join(
        f"  {k} = {v[2:-1]}\n" for k, v in expressions.items()) + "}\n")
    cidrs = console(tmp_path, "{public = local.public_cidrs, ecs = local.ecs_cidrs, db = local.db_cidrs}", {"cidr": vpc})
    trusted = IPv4Network(alb_subnets(vpc))
    assert set(trusted.subnets(new_prefix=IPv4Network(cidrs["public"][0]).prefixlen)) == {IPv4Network(c) for c in cidrs["public"]}
    assert not any(trusted.overlaps(IPv4Network(c)) for c in cidrs["ecs"] + cidrs["db"])
