"""The promote flow up to Terraform, against a real AWS API (moto) and the real terraform
binary: inputs rendered, state bucket and secrets in place, then terraform itself. The AWS
provider cannot be downloaded here, so `terraform init` is where a run must stop, with the
command, exit code and output in the error."""

from __future__ import annotations

import json
import uuid

import pytest

from obskit.errors import TerraformError
from obskit.promote import cloud
from obskit.promote.preflight import PreflightFailed
from obskit.promote.run import Workdir, backend_hcl, prepare, promote, secrets_for_ssm
from obskit.render import component_hashes, render
from obskit.spec.load import load_spec

from conftest import REPO, require_tool

FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"
ENV_SECRETS = {"TEST_SLACK_WEBHOOK_URL": "https://hooks.slack.test/secret-slack-41d7", "TEST_PAGERDUTY_KEY": "secret-pd-9c2e",
               "TEST_TEAMS_URL": "https://teams.test/secret-teams-77a1", "TEST_WEBHOOK_TOKEN": "secret-token-5b8f",
               "TEST_SMTP_PASSWORD": "secret-smtp-0e6d"}


@pytest.fixture
def project(tmp_path):
    spec = tmp_path / "obskit.yaml"
    spec.write_text(FIXTURE.read_text().replace("bucket_prefix: acme-obs-prod-",
                                                f"bucket_prefix: t{uuid.uuid4().hex[:8]}-"))
    return load_spec(spec, environ={})


def test_prepare_writes_tfvars_backend_terraform_and_image_contexts(project, tmp_path):
    work = Workdir(tmp_path / ".obskit" / "promote" / "prod")
    tfvars, plans = prepare(project, "prod", work, account="123456789012")
    assert json.loads(work.tfvars.read_text()) == tfvars
    assert tfvars["config_hashes"] == component_hashes(render(project, "prod"))
    assert tfvars["images"]["loki"].startswith("123456789012.dkr.ecr.eu-west-1.amazonaws.com/obskit-prod/loki:cfg-")
    backend = work.backend.read_text()
    assert 'key          = "obskit/obskit/prod/terraform.tfstate"' in backend and "use_lockfile = true" in backend
    assert (work.terraform / "main.tf").exists() and (work.terraform / "modules" / "ecs" / "main.tf").exists()
    # The rendered environment is the one parity compares, and the images' build context.
    env_dir = tmp_path / ".obskit" / "env" / "prod"
    assert (env_dir / "configs" / "loki" / "loki.yaml").exists()
    assert (env_dir / plans["mimir"].dockerfile_path).read_text() == plans["mimir"].dockerfile


def test_secrets_for_ssm_cover_every_bound_secret_and_never_reach_the_tfvars(project, tmp_path):
    values = secrets_for_ssm(project, "prod", tmp_path / ".obskit", environ=ENV_SECRETS)
    assert values["/obskit/obskit/prod/contact-payments-pager-integration-key"] == "secret-pd-9c2e"
    assert "/obskit/obskit/prod/postgres-password" in values
    assert "/obskit/obskit/prod/gateway-tls-key" in values and "/obskit/obskit/prod/gateway-htpasswd" in values
    work = Workdir(tmp_path / "w")
    prepare(project, "prod", work, account="123456789012")
    blob = work.tfvars.read_text()
    for name, value in values.items():
        assert value not in blob, name
        assert name in blob  # referenced by name only


def test_backend_is_one_state_per_environment(project):
    env = project.spec.environments["prod"]
    assert backend_hcl(project.spec, "prod", env) != backend_hcl(project.spec, "staging", env)


def test_promote_refuses_to_start_when_preflight_fails(project, moto_s3, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{moto_s3['endpoint']}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(PreflightFailed) as info:
        promote(project, "prod", environ={})  # the contact-point secrets are not set
    assert "TEST_PAGERDUTY_KEY" in str(info.value)
    assert not (tmp_path / ".obskit" / "promote").exists()  # nothing was written


def test_promote_plan_prepares_aws_then_stops_at_terraform_init(project, moto_s3, monkeypatch, tmp_path):
    require_tool("terraform", "install terraform to run this test")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{moto_s3['endpoint']}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "no.tfrc"))
    r53 = cloud.client("route53", "eu-west-1")
    zone = r53.create_hosted_zone(Name="example.com", CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"].split("/")[-1]
    spec_file = tmp_path / "obskit.yaml"
    spec_file.write_text(spec_file.read_text().replace("Z0123456789ABCDEFGHIJ", zone))
    resolved = load_spec(spec_file, environ={})
    lines: list[str] = []
    with pytest.raises(TerraformError) as info:
        promote(resolved, "prod", environ=ENV_SECRETS, on_line=lines.append)
    assert info.value.command[:2] == ["terraform", "init"]
    assert any(a.startswith("-backend-config=") for a in info.value.command)
    env = resolved.spec.environments["prod"]
    s3 = cloud.client("s3", env.region)
    assert s3.get_bucket_versioning(Bucket=f"{env.bucket_prefix}tfstate")["Status"] == "Enabled"
    ssm = cloud.client("ssm", env.region)
    got = ssm.get_parameter(Name="/obskit/obskit/prod/contact-payments-pager-integration-key", WithDecryption=True)
    assert got["Parameter"]["Value"] == "secret-pd-9c2e" and got["Parameter"]["Type"] == "SecureString"
    assert lines  # terraform's output was streamed
