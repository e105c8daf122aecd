"""The AWS calls obskit itself makes, through boto3: who am I, secrets into SSM, the
Terraform state bucket, ECR credentials, and the DNS and certificate facts preflight
checks. Terraform does the rest.

boto3 honours AWS_ENDPOINT_URL, so the same code runs against moto's server in tests.
Secret values never appear in messages.
"""

from __future__ import annotations

import base64
import time
from typing import Callable

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


def stop_services(region: str, cluster: str, services: list[str], *, deadline_seconds: float = 900,
                  poll_seconds: float = 5, on_line: Callable[[str], None] | None = None) -> list[str]:
    """Scale ``services`` to zero and wait until each of their tasks has STOPPED: Loki and
    Mimir flush what they hold to S3 while they stop (up to their stopTimeout), and a destroy
    must not delete what the flush needs (S3 and KMS permissions, security group rules, the S3
    endpoint) before they are done. DeleteService alone is not enough: a service is INACTIVE
    once its tasks are STOPPING, not STOPPED. Returns the services that were running; raises
    when tasks are still stopping at the deadline (nothing has been destroyed then)."""
    from botocore.exceptions import ClientError

    say = on_line or (lambda line: None)
    ecs = client("ecs", region)

    def describe() -> list[dict]:
        try:
            return ecs.describe_services(cluster=cluster, services=services)["services"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ClusterNotFoundException":
                return []
            raise

    active = [s for s in _call(f"reading the ECS services of {cluster}", describe) if s.get("status") == "ACTIVE"]
    for svc in active:
        if svc.get("desiredCount", 0) != 0:
            say(f"scaling {svc['serviceName']} to 0 (it flushes to S3 as it stops)")
            _call(f"scaling {svc['serviceName']} to 0", lambda: ecs.update_service(
                cluster=cluster, service=svc["serviceName"], desiredCount=0))
    names = [s["serviceName"] for s in active]
    if not names:
        return []
    deadline = time.monotonic() + deadline_seconds
    while True:
        stopping = []
        for name in names:
            arns = []
            for desired in ("RUNNING", "STOPPED"):  # a task told to stop is STOPPED-desired while it drains
                arns += _call(f"listing the tasks of {name}", lambda: ecs.list_tasks(
                    cluster=cluster, serviceName=name, desiredStatus=desired))["taskArns"]
            if arns:
                tasks = _call(f"reading the tasks of {name}", lambda: ecs.describe_tasks(cluster=cluster, tasks=arns[:100]))
                stopping += [f"{name}: {t['taskArn'].rsplit('/', 1)[-1]} {t.get('lastStatus')}"
                             for t in tasks["tasks"] if t.get("lastStatus") != "STOPPED"]
        if not stopping:
            return names
        if time.monotonic() >= deadline:
            raise AwsError(f"tasks still stopping after {deadline_seconds:.0f} s: {', '.join(sorted(stopping))}",
                           hint="nothing was destroyed; run --destroy again once they have stopped "
                                "(Loki and Mimir flush to S3 while they stop)")
        say(f"waiting for {len(stopping)} task(s) to stop and flush")
        time.sleep(poll_seconds)


def _revision(arn: str | None) -> str:
    """``family:revision`` of a task definition ARN (what a person reads in the console)."""
    return (arn or "none").rsplit("/", 1)[-1]


def rollout(service: dict, arn: str, earlier: frozenset[str] = frozenset()) -> tuple[str, str]:
    """Where ``service`` (a DescribeServices entry) stands on its way to task definition
    ``arn``: ("steady", ...), ("failed", why) or ("waiting", what is under way).

    Steady is what `aws ecs wait services-stable` checks (one deployment, as many tasks
    running as desired), and more: that deployment runs ``arn`` and its rolloutState is
    COMPLETED, which ECS sets once the new tasks run and have passed their container health
    checks (Mimir's essential probe sidecar asks /ready) and the old tasks are gone (flushed).
    Failed: the circuit breaker marked the deployment FAILED, or rolled the service back to
    another task definition, or the service is gone. Deployments whose ids are in ``earlier``
    failed before this rollout began (one may still be draining): they are history."""
    if service.get("status") != "ACTIVE":
        return "failed", f"the service is {service.get('status', 'missing')}"
    deployments = service.get("deployments", [])
    for d in deployments:
        if d.get("taskDefinition") == arn and d.get("rolloutState") == "FAILED" and d.get("id") not in earlier \
                and d.get("status") != "INACTIVE":
            return "failed", f"ECS failed the deployment: {d.get('rolloutStateReason') or 'no reason given'}"
    if service.get("taskDefinition") != arn:
        return "failed", f"the service now runs {_revision(service.get('taskDefinition'))} (rolled back by ECS, or changed by someone else)"
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None or primary.get("taskDefinition") != arn:
        return "waiting", f"ECS has not started a deployment of {_revision(arn)} yet"
    running, desired = primary.get("runningCount", 0), primary.get("desiredCount", 0)
    state = primary.get("rolloutState", "COMPLETED")  # absent outside the ECS deployment controller's rollouts
    older = len(deployments) - 1
    if older == 0 and state == "COMPLETED" and running == desired == service.get("desiredCount") \
            and service.get("runningCount") == desired:
        return "steady", f"{running} task(s) running {_revision(arn)}, healthy"
    detail = f"{running} of {desired} new task(s) running, rollout {state}"
    if older:
        detail += f", {older} older deployment(s) still stopping (flushing to S3)"
    return "waiting", detail


def roll_services(region: str, cluster: str, targets: list[tuple[str, str]], *, deadline_seconds: float = 900,
                  poll_seconds: float = 10, on_line: Callable[[str], None] | None = None,
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Move each ECS service of ``targets`` ([(service, task definition ARN)], in order) to
    its task definition, one after another: UpdateService, then wait until it is steady on
    it (see ``rollout``) before the next one is touched. A service already on its task
    definition is not updated (only waited for, if its deployment is still under way), so a
    re-run after a failure finishes the job. Mimir's replicas go this way: one at a time
    costs nothing, all at once empties the ring for seconds (DESIGN.md). Raises, naming the
    service and what is not rolled yet, when a rollout fails or is not steady within
    ``deadline_seconds``. ``clock`` and ``sleep`` are the time source (tests pass a fake).
    Returns the services updated."""
    from botocore.exceptions import ClientError

    say = on_line or (lambda line: None)
    ecs = client("ecs", region)

    def describe(name: str) -> dict:
        def look() -> dict:
            try:
                answer = ecs.describe_services(cluster=cluster, services=[name])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ClusterNotFoundException":
                    return {"status": "missing (no cluster)"}
                raise
            return (answer.get("services") or [{"status": "missing"}])[0]

        return _call(f"reading the ECS service {name}", look)

    updated: list[str] = []
    for i, (name, arn) in enumerate(targets, start=1):
        label, rev = f"{name} ({i}/{len(targets)})", _revision(arn)
        later = [n for n, _ in targets[i:]]
        left = f"; not rolled: {', '.join(later)}" if later else ""
        hint = ("what is on its new task definition stays; fix the cause (the task's stopped reason, its log "
                "group) and run `obskit promote --apply` again: it rolls the rest, one at a time")
        service = describe(name)
        state, detail = rollout(service, arn)
        # A deployment of this definition that failed before (a stopped roll, being drained) is not this one's.
        earlier = frozenset(d.get("id") for d in service.get("deployments", []) if d.get("rolloutState") == "FAILED")
        if state == "steady":
            say(f"{label}: already on {rev}: nothing to roll")
            continue
        if service.get("status") == "ACTIVE" and service.get("taskDefinition") != arn:
            say(f"{label}: rolling from {_revision(service.get('taskDefinition'))} to {rev}")
            _call(f"rolling {name} to {rev}", lambda: ecs.update_service(cluster=cluster, service=name, taskDefinition=arn))
            updated.append(name)
        elif state == "failed":
            raise AwsError(f"{name} cannot be rolled to {rev}: {detail}{left}", hint=hint)
        else:
            say(f"{label}: on {rev}, its deployment is still under way: waiting for it")
        started = clock()
        while True:
            state, detail = rollout(describe(name), arn, earlier)
            if state == "steady":
                say(f"{label}: steady on {rev} after {clock() - started:.0f} s ({detail})")
                break
            if state == "failed":
                raise AwsError(f"rolling {name} to {rev} failed: {detail}{left}", hint=hint)
            if clock() - started >= deadline_seconds:
                raise AwsError(f"{name} was not steady on {rev} within {deadline_seconds:.0f} s ({detail}){left}",
                               hint=hint)
            say(f"{label}: waiting: {detail}")
            sleep(poll_seconds)
    return updated
