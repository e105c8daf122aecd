"""SSM as the source of truth for an AWS environment's secrets, on moto: created once, never
replaced by a promote, rotated only by `obskit secrets rotate`, which re-derives what depends
on the value and tells which services the next apply redeploys. The spec's own ssm:
parameters are readable by the tasks and get well-formed ARNs."""

from __future__ import annotations

import json
import uuid

import pytest

from obskit.promote import cloud
from obskit.promote import secrets as ssm_secrets
from obskit.promote.ecs import tfvars
from obskit.images import image_plans
from obskit.render import component_hashes, render
from obskit.spec.load import load_spec

from conftest import AWS_ENV

REGION = "eu-west-1"


@pytest.fixture
def env(moto_s3, monkeypatch, tmp_path, write_spec):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{moto_s3['endpoint']}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    project = f"r{uuid.uuid4().hex[:8]}"
    resolved = load_spec(write_spec(f"project: {project}\ntenants:\n  - name: apps\n" + AWS_ENV), environ={})
    return {"resolved": resolved, "prefix": f"/obskit/{project}/prod/"}


def values(prefix: str, resolved) -> dict[str, tuple[str, int]]:
    return cloud.read_parameters(REGION, ssm_secrets.all_parameters(resolved.spec, "prod"))


def test_rotating_a_tenant_password_rederives_htpasswd_and_names_the_clients(env):
    resolved, prefix = env["resolved"], env["prefix"]
    first = ssm_secrets.sync(resolved, "prod", write=True)
    before = values(prefix, resolved)
    assert set(first.created) == {p for p in before if not p.endswith(("htpasswd", "tls-cert", "tls-key", "-authorization"))}
    result = ssm_secrets.rotate(resolved, "prod", "tenant-apps-write-password")
    after = values(prefix, resolved)
    changed = sorted(p for p in after if after[p] != before[p])
    assert changed == sorted([prefix + "tenant-apps-write-password", prefix + "gateway-htpasswd",
                              prefix + "tenant-apps-write-authorization"])
    assert after[prefix + "tenant-apps-write-password"][1] == 2
    assert result.parameters == [prefix + "tenant-apps-write-password", prefix + "gateway-htpasswd",
                                 prefix + "tenant-apps-write-authorization"]
    assert result.services == ["gateway", "otelcol"]  # the gateway's htpasswd, the collector's header
    assert any("'apps-write' need the new password" in n for n in result.notes)
    new = after[prefix + "tenant-apps-write-password"][0]
    assert new not in json.dumps(result.to_json())  # never printed
    # A promote afterwards changes nothing.
    again = ssm_secrets.sync(resolved, "prod", write=True)
    assert again.written == [] and values(prefix, resolved) == after


def test_rotating_the_database_password_bumps_its_version_for_aurora(env):
    resolved, prefix = env["resolved"], env["prefix"]
    state = ssm_secrets.sync(resolved, "prod", write=True)
    before = ssm_secrets.versions_by_service(resolved, "prod", state)
    result = ssm_secrets.rotate(resolved, "prod", "postgres-password")
    assert result.parameters == [prefix + "postgres-password"]
    assert values(prefix, resolved)[prefix + "postgres-password"][1] == 2  # = master_password_wo_version
    assert result.services == ["grafana"]
    after = ssm_secrets.versions_by_service(resolved, "prod", ssm_secrets.sync(resolved, "prod", write=False))
    assert {s for s in after if after[s] != before[s]} == {"grafana"}
    assert any("Aurora gets the new password" in n for n in result.notes)


def test_rotating_the_ca_reissues_the_server_certificate(env):
    from obskit import pki

    resolved, prefix = env["resolved"], env["prefix"]
    ssm_secrets.sync(resolved, "prod", write=True)
    before = values(prefix, resolved)
    result = ssm_secrets.rotate(resolved, "prod", "gateway-ca-cert")
    after = values(prefix, resolved)
    assert {p for p in after if after[p] != before[p]} == {prefix + s for s in (
        "gateway-ca-cert", "gateway-ca-key", "gateway-tls-cert", "gateway-tls-key")}
    assert sorted(pki.cert_names(after[prefix + "gateway-tls-cert"][0])) == sorted(
        ["obs.example.com", "gateway.observability.local", "gateway", "localhost", "127.0.0.1"])
    assert set(result.services) == {"gateway", "grafana", "otelcol"}


@pytest.mark.parametrize("name, message", [
    ("gateway-htpasswd", "is derived from other secrets"),
    ("tenant-apps-write-authorization", "is derived from other secrets"),
    ("tenant-apps-wrte-password", "did you mean 'tenant-apps-write-password'"),
])
def test_what_cannot_be_rotated_is_refused_with_a_reason(env, name, message):
    with pytest.raises(Exception) as info:
        ssm_secrets.rotate(env["resolved"], "prod", name)
    assert info.value.exit_code == 2 and message in str(info.value)


def test_the_specs_own_ssm_parameters_are_readable_and_well_formed(write_spec):
    text = ("tenants:\n  - name: apps\ngrafana:\n  admin_password: ssm:/team/grafana-admin\n"
            "alerting:\n  contact_points:\n    - {name: chat, type: slack, url: 'ssm:noslash'}\n  policy: {receiver: chat}\n"
            + AWS_ENV)
    resolved = load_spec(write_spec(text), environ={})
    files = render(resolved, "prod")
    hashes = component_hashes(files)
    out = tfvars(resolved.spec, "prod", image_plans(resolved.spec, "prod", files, hashes), hashes, "1.dkr.ecr.x.amazonaws.com")
    assert out["extra_ssm_parameters"] == ["/team/grafana-admin", "noslash"]
    grafana = json.loads(out["services"]["grafana"]["container_definitions"])[0]
    arns = {s["valueFrom"] for s in grafana["secrets"]}
    assert "__OBSKIT_SSM_ARN__/team/grafana-admin" in arns and "__OBSKIT_SSM_ARN__/noslash" in arns
    assert not [a for a in arns if "parameter" in a or "//" in a.replace("__OBSKIT_SSM_ARN__", "")]
    # The execution role's policy lists the same ARNs (one "/" after "parameter").
    ecs = (ssm_secrets.__file__.rsplit("/obskit/", 1)[0] + "/terraform/modules/ecs/main.tf")
    text = open(ecs).read()
    assert '"${var.ssm_parameter_arn_prefix}/${trimprefix(p, "/")}"' in text and "resources = local.secret_arns" in text
