"""The promote flow up to Terraform, against a real AWS API (moto's server) and the real
terraform binary: inputs rendered, secrets in SSM (read, created once, never replaced), no
write at all for --plan, then terraform itself. The AWS provider cannot be downloaded here,
so `terraform init` is where a run that gets that far must stop, with the command, exit
code and output in the error."""

from __future__ import annotations

import json
import uuid

import pytest

from obskit.errors import TerraformError
from obskit.promote import cloud
from obskit.promote import secrets as ssm_secrets
from obskit.promote.preflight import PreflightFailed
from obskit.promote.run import Workdir, backend_hcl, copy_terraform, destroy_targets, prepare, promote
from obskit.render import component_hashes, render
from obskit.spec.load import load_spec

from conftest import REPO, require_tool

FIXTURE = REPO / "tests" / "fixtures" / "alerting.yaml"
ENV_SECRETS = {"TEST_SLACK_WEBHOOK_URL": "https://hooks.slack.test/secret-slack-41d7", "TEST_PAGERDUTY_KEY": "secret-pd-9c2e",
               "TEST_TEAMS_URL": "https://teams.test/secret-teams-77a1", "TEST_WEBHOOK_TOKEN": "secret-token-5b8f",
               "TEST_SMTP_PASSWORD": "secret-smtp-0e6d"}
REGION = "eu-west-1"


@pytest.fixture
def project(tmp_path):
    spec = tmp_path / "obskit.yaml"
    spec.write_text(FIXTURE.read_text().replace("bucket_prefix: acme-obs-prod-",
                                                f"bucket_prefix: t{uuid.uuid4().hex[:8]}-"))
    return load_spec(spec, environ={})


@pytest.fixture
def account(moto_s3, monkeypatch, tmp_path):
    """An AWS account (moto) with a hosted zone, and a spec text of a project of its own in
    it, which `checkout(name)` writes into a fresh folder (a fresh clone of the repository)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{moto_s3['endpoint']}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "no.tfrc"))
    zone = cloud.client("route53", REGION).create_hosted_zone(
        Name="example.com", CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"].split("/")[-1]
    name = f"p{uuid.uuid4().hex[:8]}"
    text = ("project: " + name + "\n" + FIXTURE.read_text()
            .replace("Z0123456789ABCDEFGHIJ", zone).replace("bucket_prefix: acme-obs-prod-", f"bucket_prefix: {name}-"))

    def checkout(folder: str):
        root = tmp_path / folder
        root.mkdir()
        (root / "obskit.yaml").write_text(text)
        return load_spec(root / "obskit.yaml", environ={})

    return {"project": name, "checkout": checkout, "prefix": f"/obskit/{name}/prod/", "state_bucket": f"{name}-tfstate"}


def snapshot(prefix: str) -> dict:
    """Everything a promote could write: the environment's SSM parameters (values and
    versions), every bucket, every ECR repository."""
    ssm = cloud.client("ssm", REGION)
    names = []
    for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [prefix]}]):
        names += [p["Name"] for p in page["Parameters"]]
    params = cloud.read_parameters(REGION, names)
    buckets = sorted(b["Name"] for b in cloud.client("s3", REGION).list_buckets()["Buckets"])
    repos = sorted(r["repositoryName"] for r in cloud.client("ecr", REGION).describe_repositories()["repositories"])
    return {"ssm": params, "buckets": buckets, "ecr": repos}


def test_prepare_writes_tfvars_backend_terraform_and_image_contexts(project, tmp_path):
    work = Workdir(tmp_path / ".obskit" / "promote" / "prod")
    tfvars, plans = prepare(project, "prod", work, account="123456789012")
    assert json.loads(work.tfvars.read_text()) == tfvars
    assert tfvars["config_hashes"] == component_hashes(render(project, "prod"))
    assert json.loads(tfvars["services"]["loki"]["container_definitions"])[0]["image"].startswith(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/obskit-prod/loki:cfg-")
    backend = work.backend.read_text()
    assert 'key          = "obskit/obskit/prod/terraform.tfstate"' in backend and "use_lockfile = true" in backend
    assert (work.terraform / "main.tf").exists() and (work.terraform / "modules" / "ecs" / "main.tf").exists()
    # The rendered environment is the one parity compares, and the images' build context.
    env_dir = tmp_path / ".obskit" / "env" / "prod"
    assert (env_dir / "configs" / "loki" / "loki.yaml").exists()
    assert (env_dir / plans["mimir"].dockerfile_path).read_text() == plans["mimir"].dockerfile


def test_a_file_removed_upstream_is_gone_from_the_work_dir_after_an_upgrade(tmp_path):
    """An older obskit shipped a file this one does not (a module or resource removed in
    an upgrade): it must not come back into the plan. Terraform's own files stay."""
    dest = tmp_path / "terraform"
    copy_terraform(dest)
    stale = dest / "modules" / "removed_module" / "main.tf"
    stale.parent.mkdir(parents=True)
    stale.write_text('resource "aws_instance" "old" {}\n')
    (dest / "old_root_file.tf").write_text("# shipped by an older obskit\n")
    (dest / "main.tf").write_text("# edited by hand\n")
    (dest / ".terraform" / "providers").mkdir(parents=True)
    (dest / ".terraform" / "providers" / "keep").write_text("x")
    (dest / ".terraform.lock.hcl").write_text("# lock\n")
    copy_terraform(dest)
    assert not stale.exists() and not stale.parent.exists()
    assert not (dest / "old_root_file.tf").exists()
    assert (dest / "main.tf").read_text() == (REPO / "terraform" / "main.tf").read_text()
    assert (dest / ".terraform" / "providers" / "keep").exists() and (dest / ".terraform.lock.hcl").exists()
    shipped = {p.relative_to(REPO / "terraform") for p in (REPO / "terraform").rglob("*")
               if p.is_file() and ".terraform" not in p.parts}
    copied = {p.relative_to(dest) for p in dest.rglob("*") if p.is_file() and not p.name.startswith(".terraform")
              and ".terraform" not in p.parts}
    assert copied == shipped


def test_backend_is_one_state_per_environment(project):
    env = project.spec.environments["prod"]
    assert backend_hcl(project.spec, "prod", env) != backend_hcl(project.spec, "staging", env)


def test_promote_refuses_to_start_when_preflight_fails(account):
    resolved = account["checkout"]("a")
    before = snapshot(account["prefix"])
    with pytest.raises(PreflightFailed) as info:
        promote(resolved, "prod", environ={})  # the contact-point secrets are not set, and not in SSM
    assert "TEST_PAGERDUTY_KEY" in str(info.value)
    assert {c["name"] for c in info.value.checks if not c["ok"]} == {"secrets"}
    assert snapshot(account["prefix"]) == before


def test_plan_writes_nothing_and_says_nothing_is_deployed_yet(account):
    """The first --plan in an account: no SSM put, no state bucket, no ECR repository, no
    terraform run; it says what --apply would create."""
    resolved = account["checkout"]("a")
    before = snapshot(account["prefix"])
    result = promote(resolved, "prod", mode="plan", environ=ENV_SECRETS)
    assert snapshot(account["prefix"]) == before
    assert account["state_bucket"] not in before["buckets"]
    assert result.secrets_written == [] and not result.applied
    assert account["prefix"] + "postgres-password" in result.secrets_to_write
    assert any(f"the state bucket {account['state_bucket']} does not exist" in n for n in result.notes)
    # The count it states is the count it lists (created and derived alike).
    assert any(f"the {len(result.secrets_to_write)} secret(s) listed" in n for n in result.notes), result.notes


def test_two_promotes_from_two_fresh_checkouts_change_no_secret(account):
    """SSM is the source of truth: the second checkout has no local secrets at all and
    generates none; every value and every version stays as the first promote left it."""
    require_tool("terraform", "install terraform to run this test")
    first = account["checkout"]("checkout-1")
    with pytest.raises(TerraformError) as info:  # everything up to terraform init ran
        promote(first, "prod", mode="apply", environ=ENV_SECRETS)
    assert info.value.command[:2] == ["terraform", "init"]
    after_first = snapshot(account["prefix"])
    assert account["state_bucket"] in after_first["buckets"]
    assert account["prefix"] + "postgres-password" in after_first["ssm"]
    assert after_first["ssm"][account["prefix"] + "contact-payments-pager-integration-key"] == ("secret-pd-9c2e", 1)
    assert all(version == 1 for _, version in after_first["ssm"].values())

    second = account["checkout"]("checkout-2")
    changed_shell = {**ENV_SECRETS, "TEST_PAGERDUTY_KEY": "a-different-value-in-another-shell"}
    with pytest.raises(TerraformError):
        promote(second, "prod", mode="apply", environ=changed_shell)
    assert snapshot(account["prefix"]) == after_first
    # A --plan from a third checkout reads the same values, so it plans the same inputs.
    third = account["checkout"]("checkout-3")
    with pytest.raises(TerraformError):
        promote(third, "prod", mode="plan", environ={})  # every env: secret is in SSM already
    assert snapshot(account["prefix"]) == after_first


def test_plan_against_a_deployed_account_writes_nothing(account):
    """Once the state bucket and the secrets exist, --plan reads them and runs terraform
    (which stops at init here); the account is the same before and after."""
    require_tool("terraform", "install terraform to run this test")
    with pytest.raises(TerraformError):
        promote(account["checkout"]("a"), "prod", mode="apply", environ=ENV_SECRETS)
    before = snapshot(account["prefix"])
    with pytest.raises(TerraformError) as info:
        promote(account["checkout"]("b"), "prod", mode="plan", environ={})
    assert info.value.command[:2] == ["terraform", "init"]
    assert snapshot(account["prefix"]) == before


def test_secrets_reach_the_tasks_by_reference_only(account):
    from obskit.project import Project

    resolved = account["checkout"]("a")
    state = ssm_secrets.sync(resolved, "prod", write=True, environ=ENV_SECRETS)
    values = ssm_secrets.task_values(resolved, "prod", state)
    assert values[account["prefix"] + "contact-payments-pager-integration-key"] == "secret-pd-9c2e"
    workdir = Workdir(Project.of(resolved).state_dir / "promote" / "prod")
    tfvars, _ = prepare(resolved, "prod", workdir, account="123456789012",
                        secrets_versions=ssm_secrets.versions_by_service(resolved, "prod", state))
    blob = workdir.tfvars.read_text()
    for name, value in values.items():
        assert value not in blob, name
        assert name in blob  # referenced by name only
    assert len({s["secrets_version"] for s in tfvars["services"].values()}) > 1  # per service


def test_destroy_keeps_the_data_and_its_keys():
    state = ["data.aws_caller_identity.current", "module.ecs.aws_ecs_service.this[\"loki\"]",
             "module.rds.aws_rds_cluster.this", "module.rds.aws_kms_key.this", "module.rds.terraform_data.snapshot_suffix",
             "module.storage.aws_kms_key.this", "module.storage.aws_s3_bucket.this[\"loki_chunks\"]",
             "module.storage.data.aws_iam_policy_document.key", "module.network.aws_vpc.this"]
    destroy, kept = destroy_targets(state)
    assert destroy == ["module.ecs.aws_ecs_service.this[\"loki\"]", "module.rds.aws_rds_cluster.this",
                       "module.rds.terraform_data.snapshot_suffix", "module.network.aws_vpc.this"]
    assert kept == ["module.rds.aws_kms_key.this", "module.storage.aws_kms_key.this",
                    "module.storage.aws_s3_bucket.this[\"loki_chunks\"]"]
