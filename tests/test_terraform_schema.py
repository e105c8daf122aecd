"""Every resource and data source type, argument and block written in terraform/ exists in the
pinned AWS provider, and none is deprecated.

`terraform validate` needs the provider, which cannot be downloaded on obskit's machines. The
schema comes instead from a registry package generated from the provider: the npm package
@cdktf/provider-aws 21.22.1, whose package.json states hashicorp/aws 6.25.0. Its .jsii
manifest describes every resource and data source with each argument and nested block
(their Terraform names are in each property's registry link). .ci/run unpacks it into
.ci-bin/provider-aws; OBSKIT_AWS_PROVIDER_JSII points elsewhere.

The generated package carries no deprecation flags, so deprecated arguments are listed here
from the provider's 6.x documentation and upgrade guide."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

import hcl2
import pytest

from conftest import REPO

TF = REPO / "terraform"
PINNED = ("@cdktf/provider-aws", "21.22.1", "6.25.0")  # package, its version, the provider version it states
JSII = Path(os.environ.get("OBSKIT_AWS_PROVIDER_JSII", REPO / ".ci-bin" / "provider-aws" / "package" / ".jsii"))

META = {"count", "for_each", "depends_on", "lifecycle", "provider", "provisioner", "connection"}
# Deprecated in provider 6.x (docs and the 6.0 upgrade guide): never to be written.
DEPRECATED = {
    ("aws_service_discovery_service", "health_check_custom_config.failure_threshold"),
    ("aws_s3_bucket", "acl"), ("aws_s3_bucket", "versioning"), ("aws_s3_bucket", "logging"),
    ("aws_s3_bucket", "lifecycle_rule"), ("aws_s3_bucket", "server_side_encryption_configuration"),
    ("aws_s3_bucket", "policy"), ("aws_s3_bucket", "website"), ("aws_s3_bucket", "cors_rule"),
    ("aws_s3_bucket", "replication_configuration"), ("aws_s3_bucket", "object_lock_configuration"),
    ("aws_s3_bucket", "acceleration_status"), ("aws_s3_bucket", "request_payer"), ("aws_s3_bucket", "grant"),
    ("aws_s3_bucket_lifecycle_configuration", "rule.prefix"),
    ("aws_iam_role", "inline_policy"), ("aws_iam_role", "managed_policy_arns"),
    ("aws_flow_log", "log_group_name"), ("aws_ssm_parameter", "overwrite"),
    ("aws_ecs_cluster", "default_capacity_provider_strategy"),
    ("aws_db_instance", "name"), ("aws_rds_cluster", "engine_mode.global"),
    ("aws_lb_target_group", "connection_termination"),
}
# Ephemeral resources postdate the generated package; their arguments per the 6.x docs.
EPHEMERAL = {"aws_ssm_parameter": {"arn", "with_decryption", "region"}}


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


@lru_cache(maxsize=1)
def provider_schema() -> dict[str, dict[str, dict]]:
    """{"resource"|"data": {type: nested schema}}, a nested schema being {argument: schema
    of its block, or {} for a plain argument}."""
    if not JSII.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the provider schema {JSII} is missing: .ci/run unpacks {PINNED[0]}@{PINNED[1]}")
        pytest.skip(f"no provider schema at {JSII} (run the npm step of .ci/run)")
    package = json.loads((JSII.parent / "package.json").read_text())
    assert (package["name"], package["version"]) == PINNED[:2], "the schema package is not the pinned one"
    assert package["cdktf"]["provider"]["version"] == PINNED[2]
    types = json.loads(JSII.read_text())["types"]

    def argname(prop: dict) -> str:
        docs = prop.get("docs", {})
        m = re.search(r"#([a-z0-9_]+) ", docs.get("summary", "") + " " + docs.get("remarks", "") + " ")
        return m.group(1) if m else _snake(prop["name"])

    def struct_of(ref: dict) -> str | None:
        if "fqn" in ref:
            t = types.get(ref["fqn"])
            return ref["fqn"] if t and t.get("datatype") else None
        if "collection" in ref:
            return struct_of(ref["collection"]["elementtype"])
        if "union" in ref:
            return next((f for f in (struct_of(t) for t in ref["union"]["types"]) if f), None)
        return None

    cache: dict[str, dict] = {}

    def schema(fqn: str, depth: int = 0) -> dict:
        if fqn in cache:
            return cache[fqn]
        out: dict[str, dict] = {}
        cache[fqn] = out
        for prop in types[fqn].get("properties", []):
            nested = struct_of(prop["type"])
            out[argname(prop)] = schema(nested, depth + 1) if nested and depth < 12 else {}
        return out

    found: dict[str, dict[str, dict]] = {"resource": {}, "data": {}}
    link = re.compile(rf"registry\.terraform\.io/providers/hashicorp/aws/{re.escape(PINNED[2])}/docs/(resources|data-sources)/\S+ (aws_[a-z0-9_]+)\}}")
    for fqn, t in types.items():
        if t.get("base") not in ("cdktf.TerraformResource", "cdktf.TerraformDataSource"):
            continue
        m = link.search(t.get("docs", {}).get("summary", ""))
        if m and fqn + "Config" in types:
            kind = "resource" if m.group(1) == "resources" else "data"
            found[kind][m.group(2)] = schema(fqn + "Config")
    return found


def _unquote(key: str) -> str:
    return key.strip('"')


def _blocks(value) -> list[dict]:
    if isinstance(value, list) and value and all(isinstance(v, dict) and v.get("__is_block__") for v in value):
        return value
    return []


def check_body(rtype: str, body: dict, schema: dict, path: str, problems: list[str]) -> None:
    for key, value in body.items():
        if key.startswith("__") or (not path and key in META):
            continue
        if key == "dynamic":
            for block in value:
                for name, inner in block.items():
                    if name.startswith("__"):
                        continue
                    name = _unquote(name)
                    content = inner.get("content", [{}])
                    check_body(rtype, {name: [dict(c, __is_block__=True) for c in content]}, schema, path, problems)
            continue
        where = f"{path}{key}"
        if key not in schema:
            problems.append(f"{rtype}: '{where}' is not an argument or block of {rtype} in provider {PINNED[2]}")
            continue
        if (rtype, where) in DEPRECATED:
            problems.append(f"{rtype}: '{where}' is deprecated in provider {PINNED[2]}")
        for block in _blocks(value):
            check_body(rtype, block, schema[key], where + ".", problems)


def terraform_files() -> list[Path]:
    return sorted(p for p in TF.rglob("*.tf") if ".terraform" not in p.parts)


def problems_in(files: list[Path]) -> list[str]:
    schema = provider_schema()
    problems: list[str] = []
    for path in files:
        doc = hcl2.load(path.open())
        for kind in ("resource", "data", "ephemeral"):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    rtype = _unquote(rtype)
                    if rtype.startswith("__") or not rtype.startswith("aws_"):
                        continue  # terraform_data is built into terraform
                    for body in named.values():
                        if not isinstance(body, dict):
                            continue
                        if kind == "ephemeral":
                            allowed = {k: {} for k in EPHEMERAL.get(rtype, ())}
                            if not allowed:
                                problems.append(f"{path.name}: ephemeral {rtype} is not known")
                            check_body(rtype, body, allowed, "", problems)
                        elif rtype not in schema[kind]:
                            problems.append(f"{path.name}: {kind} type {rtype} does not exist in provider {PINNED[2]}")
                        else:
                            check_body(rtype, body, schema[kind][rtype], "", problems)
    return problems


def test_the_schema_is_read_from_the_pinned_package():
    schema = provider_schema()
    assert len(schema["resource"]) > 1200 and len(schema["data"]) > 500
    sd = schema["resource"]["aws_service_discovery_service"]
    assert "failure_threshold" in sd["health_check_custom_config"]  # nested blocks are read
    assert {"master_password_wo", "master_password_wo_version"} <= set(schema["resource"]["aws_rds_cluster"])


def test_every_type_argument_and_block_exists_and_none_is_deprecated():
    files = terraform_files()
    assert len(files) > 30
    assert problems_in(files) == []


def test_a_misspelt_argument_a_deprecated_one_and_an_unknown_type_are_caught(tmp_path):
    text = (TF / "modules" / "service_discovery" / "main.tf").read_text()
    bad = tmp_path / "main.tf"
    bad.write_text(text.replace("routing_policy", "routing_polcy")
                   .replace("health_check_custom_config {}", "health_check_custom_config {\n    failure_threshold = 1\n  }")
                   + '\nresource "aws_ecs_servce" "x" {}\n'
                   + 'data "aws_region" "r" {\n  nmae = "x"\n}\n')
    problems = problems_in([bad])
    assert any("'dns_config.routing_polcy' is not an argument" in p for p in problems), problems
    assert any("'health_check_custom_config.failure_threshold' is deprecated" in p for p in problems), problems
    assert any("aws_ecs_servce does not exist" in p for p in problems), problems
    assert any("aws_region: 'nmae'" in p for p in problems), problems
    assert len(problems) == 4, problems
