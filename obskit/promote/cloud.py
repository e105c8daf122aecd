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
    """An AWS API call failed (exit 4)."""

    exit_code = 4


class AwsConfigError(AwsError):
    """This machine's AWS setup is incomplete: credentials, profile, region (exit 2)."""

    exit_code = 2


# Client errors that mean "this identity may not do that", with what to do about it.
_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
           "InvalidClientTokenId", "AuthorizationError")
_EXPIRED = ("ExpiredToken", "ExpiredTokenException", "RequestExpired")


def _config_error(exc) -> AwsError:
    """One sentence (and a hint) for a botocore error raised before or instead of an API
    answer: missing profile or credentials, no region, an unreachable endpoint."""
    from botocore import exceptions as bx

    creds_hint = "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
    if isinstance(exc, bx.ProfileNotFound):
        profile = getattr(exc, "kwargs", {}).get("profile", "?")
        return AwsConfigError(f"the AWS profile '{profile}' is not configured on this machine",
                              hint="check AWS_PROFILE (`aws configure list-profiles` lists the profiles), or unset it")
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return AwsConfigError("no AWS credentials found", hint=creds_hint)
    if isinstance(exc, bx.NoRegionError):
        return AwsConfigError("no AWS region is set", hint="the spec's region is used for promote; set AWS_REGION for other commands")
    if isinstance(exc, (bx.SSOError, bx.TokenRetrievalError)) or type(exc).__name__ in ("UnauthorizedSSOTokenError", "SSOTokenLoadError"):
        return AwsConfigError("the AWS SSO session has expired or was never started", hint="run `aws sso login`")
    if isinstance(exc, bx.ConfigParseError):
        return AwsConfigError(f"the AWS config file cannot be read: {exc}", hint="fix ~/.aws/config or AWS_CONFIG_FILE")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError)):
        return AwsError(f"cannot reach AWS: {exc}", hint="check the network, a proxy, or AWS_ENDPOINT_URL")
    return AwsError(f"AWS: {exc}")


def client(service: str, region: str):
    """A client from a fresh session: credentials are looked up now, not cached from before."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.session.Session(region_name=region).client(service)
    except BotoCoreError as exc:
        raise _config_error(exc) from None


def _client_error(what: str, exc) -> AwsError:
    err = exc.response.get("Error", {})
    code, message = err.get("Code", "error"), (err.get("Message") or "").strip()
    text = f"{what}: {code}" + (f": {message}" if message else "")
    if code in _EXPIRED:
        return AwsConfigError(f"{what}: the AWS credentials have expired", hint="refresh them (`aws sso login`) and run again")
    if code in _DENIED:
        return AwsError(text, hint="the identity obskit runs as lacks this permission (see terraform/README.md, "
                                   "'Who runs promote'), or the credentials are not valid")
    return AwsError(text)


def _call(what: str, fn):
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn()
    except ClientError as exc:
        raise _client_error(what, exc) from None
    except BotoCoreError as exc:
        raise _config_error(exc) from None


def caller_identity(region: str) -> dict:
    sts = client("sts", region)
    ident = _call("reading the caller identity", sts.get_caller_identity)
    return {"account": ident["Account"], "arn": ident["Arn"]}


def put_secrets(region: str, values: Mapping[str, str], *, kms_key_id: str | None = None) -> list[str]:
    """Write SecureString parameters (name -> value); only those that changed. Returns the
    names written (never the values)."""
    ssm = client("ssm", region)
    written = []
    current_values = read_parameters(region, list(values))
    for name, value in sorted(values.items()):
        current = current_values.get(name, (None, 0))[0]
        if current == value:
            continue
        args = {"Name": name, "Value": value, "Type": "SecureString", "Overwrite": True,
                "Description": "obskit secret; written by obskit promote"}
        if kms_key_id:
            args["KeyId"] = kms_key_id
        _call(f"writing SSM parameter {name}", lambda: ssm.put_parameter(**args))
        written.append(name)
    return written


def read_parameters(region: str, names: list[str], *, decrypt: bool = True) -> dict[str, tuple[str, int]]:
    """name -> (value, version) of the SSM parameters that exist; missing names are left out."""
    ssm = client("ssm", region)
    out: dict[str, tuple[str, int]] = {}
    names = sorted(set(names))
    for i in range(0, len(names), 10):  # GetParameters takes at most 10 names
        batch = names[i:i + 10]
        answer = _call(f"reading SSM parameters ({', '.join(batch)})",
                       lambda: ssm.get_parameters(Names=batch, WithDecryption=decrypt))
        for p in answer.get("Parameters", []):
            out[p["Name"]] = (p["Value"], int(p["Version"]))
    return out


def create_parameter(region: str, name: str, value: str, *, overwrite: bool = False) -> int:
    """Write one SecureString. ``overwrite`` False never replaces an existing value (a
    parameter created meanwhile by another promote wins). Returns its version."""
    ssm = client("ssm", region)
    args = {"Name": name, "Value": value, "Type": "SecureString", "Overwrite": overwrite, "Tier": "Standard"}
    if not overwrite:
        args["Description"] = "obskit secret; created by obskit promote, rotated by obskit secrets rotate"
    return int(_call(f"writing SSM parameter {name}", lambda: ssm.put_parameter(**args))["Version"])


def bucket_exists(region: str, bucket: str) -> bool:
    """Whether the bucket exists and is ours to read; raise for one that is someone else's."""
    from botocore.exceptions import ClientError

    s3 = client("s3", region)

    def look() -> bool:
        try:
            s3.head_bucket(Bucket=bucket)
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchBucket", "NotFound"):
                return False
            if code in ("403", "AccessDenied"):
                raise AwsError(f"the state bucket {bucket} exists but is not yours (or not readable)",
                               hint="pick another bucket_prefix, or check the identity's S3 permissions") from None
            raise

    return _call(f"looking up the state bucket {bucket}", look)


def ensure_state_bucket(region: str, bucket: str) -> bool:
    """The Terraform state bucket: created once, versioned, encrypted, private. Returns
    True when it was created now."""
    if bucket_exists(region, bucket):
        return False
    s3 = client("s3", region)
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
