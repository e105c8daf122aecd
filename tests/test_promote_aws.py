"""The AWS side of promote against a real AWS API (moto's server on loopback): secrets into
SSM, the state bucket, ECR credentials, preflight; and the docker push at its chokepoint."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest

from obskit.errors import DockerUnavailable
from obskit.promote import cloud
from obskit.promote.preflight import PreflightFailed, covers, require, run_checks
from obskit.spec.load import load_spec

REGION = "eu-west-1"


@pytest.fixture
def aws(moto_s3, monkeypatch, tmp_path):
    """boto3 pointed at moto with throwaway credentials, isolated from the developer's AWS config."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{moto_s3['endpoint']}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return cloud


def test_secrets_go_to_ssm_as_securestrings_and_are_never_replaced_unless_asked(aws):
    name = f"/obskit/test-{uuid.uuid4().hex[:6]}/prod/postgres-password"
    assert aws.create_parameter(REGION, name, "pw-1") == 1
    with pytest.raises(aws.AwsError, match="ParameterAlreadyExists"):
        aws.create_parameter(REGION, name, "pw-other")  # another promote's value wins
    assert aws.create_parameter(REGION, name, "pw-2", overwrite=True) == 2  # a rotation
    ssm = aws.client("ssm", REGION)
    param = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert param["Type"] == "SecureString" and param["Value"] == "pw-2"
    assert aws.read_parameters(REGION, [name]) == {name: ("pw-2", 2)}


def test_destroy_first_scales_the_flushing_services_to_zero_and_waits_for_their_tasks(aws):
    """Before Terraform deletes anything, Loki's and Mimir's services go to zero tasks and
    every task must have STOPPED (flushed): one still stopping stops the destroy, named."""
    ecs = aws.client("ecs", REGION)
    cluster = f"c{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=cluster)
    # moto runs tasks on a registered EC2 container instance (its awsvpc path cannot run one).
    ec2 = aws.client("ec2", REGION)
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]
    ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps({
        "instanceId": inst["InstanceId"], "availabilityZone": inst["Placement"]["AvailabilityZone"],
        "privateIp": inst["PrivateIpAddress"], "imageId": ami, "instanceType": inst["InstanceType"],
        "region": REGION, "accountId": "123456789012", "architecture": "x86_64",
        "pendingTime": "2020-01-01T00:00:00Z", "version": "2017-09-30"}))
    arn = ecs.register_task_definition(family=f"{cluster}-loki", containerDefinitions=[
        {"name": "loki", "image": "x", "essential": True, "cpu": 256, "memory": 512}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="loki", taskDefinition=arn, desiredCount=1)
    task = ecs.run_task(cluster=cluster, taskDefinition=arn, count=1)["tasks"][0]
    with pytest.raises(aws.AwsError, match=r"tasks still stopping after 0 s: loki: \S+ [A-Z]+\n"):
        aws.stop_services(REGION, cluster, ["loki", "mimir-1"], deadline_seconds=0)
    assert ecs.describe_services(cluster=cluster, services=["loki"])["services"][0]["desiredCount"] == 0
    ecs.stop_task(cluster=cluster, task=task["taskArn"])  # what ECS does when the count drops
    assert aws.stop_services(REGION, cluster, ["loki", "mimir-1"], deadline_seconds=0) == ["loki"]
    assert aws.stop_services(REGION, f"{cluster}-gone", ["loki"], deadline_seconds=0) == []


def test_state_bucket_is_created_once_versioned_encrypted_and_private(aws):
    bucket = f"obskit-state-{uuid.uuid4().hex[:8]}"
    assert aws.ensure_state_bucket(REGION, bucket) is True
    assert aws.ensure_state_bucket(REGION, bucket) is False
    s3 = aws.client("s3", REGION)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())


def test_ecr_credentials_for_docker_login(aws):
    registry, user, password = aws.ecr_credentials(REGION)
    assert registry.endswith(f".dkr.ecr.{REGION}.amazonaws.com") and user == "AWS" and password


@pytest.mark.usefixtures("no_docker_engine")
def test_push_goes_through_the_docker_chokepoint():
    """No engine here: the chokepoint reports the exact docker command and exit code 3."""
    from obskit.tools import docker

    with pytest.raises(DockerUnavailable) as info:
        docker.push("123456789012.dkr.ecr.eu-west-1.amazonaws.com/obskit-prod/loki:cfg-0123456789abcdef")
    assert info.value.exit_code == 3
    assert info.value.command[-1] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/obskit-prod/loki:cfg-0123456789abcdef"


def _spec(write_spec, *, zone_id: str | None = None, cert_arn: str | None = None, extra: str = "", engine: str = "17.5"):
    dns = (f"    hosted_zone_id: {zone_id}\n" if zone_id else "") + (f"    certificate_arn: {cert_arn}\n" if cert_arn else "")
    return load_spec(write_spec(
        "tenants:\n  - name: apps\n" + extra +
        "environments:\n  local:\n    kind: compose\n  prod:\n    kind: aws\n    region: eu-west-1\n"
        f"    domain: obs.example.com\n    bucket_prefix: acme-obs-prod-\n{dns}"
        f"    database:\n      engine_version: \"{engine}\"\n"), environ={})


def _zone(aws, name: str) -> str:
    r53 = aws.client("route53", REGION)
    zone = r53.create_hosted_zone(Name=name, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    return zone.split("/")[-1]


def _certificate(aws, names: list[str]) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    acm = aws.client("acm", REGION)
    return acm.import_certificate(
        Certificate=cert.public_bytes(serialization.Encoding.PEM),
        PrivateKey=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))["CertificateArn"]


def test_preflight_passes_for_a_sound_environment(aws, write_spec):
    resolved = _spec(write_spec, zone_id=_zone(aws, "example.com"), cert_arn=_certificate(aws, ["*.example.com"]))
    checks = run_checks(resolved, "prod", environ={})
    by_name = {c.name: c for c in checks}
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert set(by_name) == {"environment", "secrets", "database", "terraform", "aws credentials", "dns", "certificate"} \
        if by_name["terraform"].detail.startswith("terraform ") else True
    assert by_name["aws credentials"].detail.startswith("account ")
    require(checks)  # raises nothing


def test_preflight_names_every_failure_in_one_message(aws, write_spec):
    resolved = _spec(
        write_spec, zone_id=_zone(aws, "other.org"), cert_arn=_certificate(aws, ["www.example.com"]), engine="16.4",
        extra="alerting:\n  contact_points:\n    - {name: pager, type: pagerduty, integration_key: env:OBSKIT_TEST_PD_KEY}\n"
              "  policy: {receiver: pager}\n",
    )
    checks = run_checks(resolved, "prod", environ={})
    failed = {c.name: c.detail for c in checks if not c.ok}
    assert set(failed) == {"secrets", "database", "dns", "certificate"}
    assert "OBSKIT_TEST_PD_KEY" in failed["secrets"]
    assert "16.4" in failed["database"] and "postgres:17" in failed["database"].replace("postgres:17.10", "postgres:17")
    assert "not inside hosted zone" in failed["dns"]
    assert "do not cover obs.example.com" in failed["certificate"]
    with pytest.raises(PreflightFailed) as info:
        require(checks)
    assert "4 of" in str(info.value) and "nothing was changed" in str(info.value)


def test_preflight_without_credentials_says_so(moto_s3, monkeypatch, tmp_path, write_spec):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{moto_s3['endpoint']}")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    resolved = _spec(write_spec, cert_arn="arn:aws:acm:eu-west-1:123456789012:certificate/x")
    checks = {c.name: c for c in run_checks(resolved, "prod", environ={}, check_terraform=False)}
    detail = checks["aws credentials"].detail
    assert not checks["aws credentials"].ok and detail.startswith("no AWS credentials found (")
    assert "AWS_PROFILE" in detail and "aws sso login" in detail  # the hint is kept


def test_preflight_refuses_a_compose_environment(write_spec):
    resolved = _spec(write_spec, cert_arn="arn:aws:acm:eu-west-1:123456789012:certificate/x")
    (check,) = run_checks(resolved, "local", environ={})
    assert not check.ok and "promote deploys kind: aws" in check.detail


def test_wildcard_certificates_cover_one_level():
    assert covers("*.example.com", "obs.example.com")
    assert not covers("*.example.com", "a.obs.example.com")
    assert covers("obs.example.com", "obs.example.com")


@pytest.mark.usefixtures("no_docker_engine")
def test_from_lines_are_pinned_by_digest_through_the_chokepoint():
    from obskit.tools import docker

    pinned = "nginx:1.30.5@sha256:" + "a" * 64
    assert docker.pinned(pinned) == pinned  # already exact: no registry needed
    with pytest.raises(DockerUnavailable) as info:
        docker.pinned("grafana/loki:3.7.6")  # resolving needs a pull: no engine here
    assert "grafana/loki:3.7.6" in info.value.command


def test_ecr_login_goes_through_the_docker_chokepoint_with_moto_credentials(aws):
    from obskit.tools import docker

    from obskit.errors import ToolError

    registry, user, password = aws.ecr_credentials(REGION)
    # Here the docker CLI cannot reach moto's fake registry host (nor an engine): a typed
    # error with the command, the token passed on stdin and never in a message.
    with pytest.raises((ToolError, DockerUnavailable)) as info:
        docker.login(registry, user, password)
    assert info.value.command[1:] == ["login", "--password-stdin", "--username", "AWS", registry]
    assert password not in str(info.value) and password not in " ".join(info.value.command)


def test_container_definitions_are_accepted_by_the_ecs_api(aws):
    """What Terraform hands to ECS: obskit's container definitions with its placeholders
    filled as the ecs module fills them, registered through the ECS API (botocore checks
    every field name and type against the service model; moto stores them)."""
    import json

    from obskit.promote.ecs import tfvars
    from obskit.images import image_plans
    from obskit.render import component_hashes, render

    from conftest import REPO

    resolved = load_spec(REPO / "tests" / "fixtures" / "alerting.yaml", environ={})
    files = render(resolved, "prod")
    plans = image_plans(resolved.spec, "prod", files, component_hashes(files))
    account = aws.caller_identity(REGION)["account"]
    inputs = tfvars(resolved.spec, "prod", plans, component_hashes(files), f"{account}.dkr.ecr.{REGION}.amazonaws.com")
    ecs = aws.client("ecs", REGION)
    for name, svc in inputs["services"].items():
        text = (svc["container_definitions"]
                .replace("__OBSKIT_SSM_ARN__", f"arn:aws:ssm:{REGION}:{account}:parameter")
                .replace("__OBSKIT_OUTPUT_grafana_database_endpoint__", "grafana.cluster-x.eu-west-1.rds.amazonaws.com"))
        assert "__OBSKIT_" not in text, name  # every placeholder is one the ecs module fills
        definitions = json.loads(text)
        task = ecs.register_task_definition(
            family=f"obskit-prod-{name}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu=str(svc["cpu"]), memory=str(svc["memory"]),
            executionRoleArn=f"arn:aws:iam::{account}:role/obskit-prod-ecs-execution",
            taskRoleArn=f"arn:aws:iam::{account}:role/obskit-prod-{name}",
            runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
            containerDefinitions=definitions)["taskDefinition"]
        stored = {c["name"]: c for c in task["containerDefinitions"]}
        assert stored[name]["image"] == plans[svc["component"]].uri(f"{account}.dkr.ecr.{REGION}.amazonaws.com"), name
        assert stored[name]["image"].endswith(":" + plans[svc["component"]].tag), name
        for container in stored.values():  # sidecars too: every image comes from this account's ECR
            assert container["image"].startswith(f"{account}.dkr.ecr.{REGION}.amazonaws.com/"), (name, container["name"])
        for secret in stored[name].get("secrets", []):
            assert secret["valueFrom"].startswith(f"arn:aws:ssm:{REGION}:{account}:parameter/obskit/obskit/prod/")


def test_an_image_already_in_ecr_is_found_by_its_content_tag(aws):
    import json

    ecr = aws.client("ecr", REGION)
    repository = f"obskit-{uuid.uuid4().hex[:6]}/loki"
    ecr.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                           "digest": "sha256:" + "0" * 64}, "layers": []}
    ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag="cfg-0123456789abcdef")
    assert aws.image_exists(REGION, repository, "cfg-0123456789abcdef")
    assert not aws.image_exists(REGION, repository, "cfg-fedcba9876543210")
    with pytest.raises(aws.AwsError) as info:  # any other failure is one clear message
        aws.image_exists(REGION, "obskit-missing/loki", "cfg-0123456789abcdef")
    assert "RepositoryNotFoundException" in str(info.value) and info.value.exit_code == 4


@pytest.mark.usefixtures("no_docker_engine")
def test_local_image_lookup_goes_through_the_docker_chokepoint():
    """No engine here: asking whether a component image is built already is a typed error
    (exit 3), never a silent "no" that would rebuild and recreate containers."""
    from obskit.tools import docker

    with pytest.raises(DockerUnavailable) as info:
        docker.image_exists("obskit/loki:cfg-0123456789abcdef")
    assert info.value.exit_code == 3 and "obskit/loki:cfg-0123456789abcdef" in info.value.command
