"""The AWS calls obskit itself makes, through boto3: who am I, secrets into SSM, the
Terraform state bucket, ECR credentials, and the DNS and certificate facts preflight
checks. Terraform does the rest.

boto3 honours AWS_ENDPOINT_URL, so the same code runs against moto's server in tests.
Secret values never appear in messages.
"""

from __future__ import annotations

import base64
from typing import Mapping

from obskit.errors import ObskitError


class AwsError(ObskitError):
    exit_code = 4


def client(service: str, region: str):
    """A client from a fresh session: credentials are looked up now, not cached from before."""
    import boto3

    return boto3.session.Session(region_name=region).client(service)


def _client_error(what: str, exc) -> AwsError:
    err = exc.response.get("Error", {})
    return AwsError(f"{what}: {err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": "))


def _call(what: str, fn):
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return fn()
    except NoCredentialsError:
        raise AwsError("no AWS credentials found",
                       hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`") from None
    except ClientError as exc:
        raise _client_error(what, exc) from None
    except BotoCoreError as exc:
        raise AwsError(f"{what}: {exc}") from None


def caller_identity(region: str) -> dict:
    sts = client("sts", region)
    ident = _call("reading the caller identity", sts.get_caller_identity)
    return {"account": ident["Account"], "arn": ident["Arn"]}


def put_secrets(region: str, values: Mapping[str, str], *, kms_key_id: str | None = None) -> list[str]:
    """Write SecureString parameters (name -> value); only those that changed. Returns the
    names written (never the values)."""
    ssm = client("ssm", region)
    written = []
    for name, value in sorted(values.items()):
        current = None
        try:
            current = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            pass
        if current == value:
            continue
        args = {"Name": name, "Value": value, "Type": "SecureString", "Overwrite": True,
                "Description": "obskit secret; written by obskit promote"}
        if kms_key_id:
            args["KeyId"] = kms_key_id
        _call(f"writing SSM parameter {name}", lambda: ssm.put_parameter(**args))
        written.append(name)
    return written


def ensure_state_bucket(region: str, bucket: str) -> bool:
    """The Terraform state bucket: created once, versioned, encrypted, private. Returns
    True when it was created now."""
    s3 = client("s3", region)
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise AwsError(f"the state bucket {bucket} exists but is not yours (or not readable)",
                           hint="pick another bucket_prefix") from None
    create = {"Bucket": bucket}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    _call(f"creating the state bucket {bucket}", lambda: s3.create_bucket(**create))
    _call("enabling versioning", lambda: s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}))
    _call("enabling encryption", lambda: s3.put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]}))
    _call("blocking public access", lambda: s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                                       "BlockPublicPolicy": True, "RestrictPublicBuckets": True}))
    return True


def ecr_credentials(region: str) -> tuple[str, str, str]:
    """(registry host, username, password) for docker login to this account's ECR."""
    ecr = client("ecr", region)
    data = _call("getting an ECR token", ecr.get_authorization_token)["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    registry = data["proxyEndpoint"].removeprefix("https://")
    return registry, user, password


def image_exists(region: str, repository: str, tag: str) -> bool:
    """Whether ``repository:tag`` is already in ECR. Tags are content hashes and the
    repositories immutable, so an image that is there is the one promote would build."""
    from botocore.exceptions import ClientError

    ecr = client("ecr", region)

    def look() -> bool:
        try:
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ImageNotFoundException":
                return False
            raise

    return _call(f"looking up {repository}:{tag} in ECR", look)


def hosted_zone_name(region: str, zone_id: str) -> str:
    r53 = client("route53", region)
    zone = _call(f"reading hosted zone {zone_id}", lambda: r53.get_hosted_zone(Id=zone_id))
    return zone["HostedZone"]["Name"].rstrip(".")


def certificate(region: str, arn: str) -> dict:
    acm = client("acm", region)
    cert = _call(f"reading certificate {arn}", lambda: acm.describe_certificate(CertificateArn=arn))["Certificate"]
    return {"status": cert.get("Status"), "names": [cert.get("DomainName"), *cert.get("SubjectAlternativeNames", [])]}
