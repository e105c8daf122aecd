"""What must hold before `obskit promote` touches anything. Every check runs; each failure
is one clear line; any failure stops the promote."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from obskit import bindings
from obskit.errors import ObskitError
from obskit.spec.model import AwsEnvironment


class PreflightFailed(ObskitError):
    exit_code = 2


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def covers(name: str, domain: str) -> bool:
    if name == domain:
        return True
    return name.startswith("*.") and domain.count(".") == name.count(".") and domain.endswith(name[1:])


def run_checks(resolved, env_name: str, *, environ: Mapping[str, str] | None = None,
               check_terraform: bool = True) -> list[Check]:
    from obskit.promote import cloud
    from obskit.tools import terraform as tf

    environ = os.environ if environ is None else environ
    spec = resolved.spec
    env = resolved.environment(env_name)
    out: list[Check] = []
    if not isinstance(env, AwsEnvironment):
        return [Check("environment", False, f"'{env_name}' is a {env.kind} environment; promote deploys kind: aws")]
    out.append(Check("environment", True, f"{env_name}: AWS {env.region}, {env.domain}"))

    pg_major = spec.images.postgres.split(":")[-1].split(".")[0]
    aurora_major = env.database.engine_version.split(".")[0]
    out.append(Check("database", pg_major == aurora_major,
                     f"Aurora PostgreSQL {env.database.engine_version} matches postgres {pg_major} used locally"
                     if pg_major == aurora_major else
                     f"Aurora PostgreSQL {env.database.engine_version} is not the major version of images.postgres "
                     f"({spec.images.postgres}): Grafana would run on a different database than it was tested on"))

    if check_terraform:
        try:
            version = tf.version()
            ok = version >= tf.MIN_VERSION
            out.append(Check("terraform", ok, f"terraform {'.'.join(map(str, version))}" + (
                "" if ok else f": {'.'.join(map(str, tf.MIN_VERSION))} or newer is needed (write-only passwords)")))
        except ObskitError as exc:
            out.append(Check("terraform", False, exc.message.splitlines()[0]))

    unset = sorted({s.ref[4:]: s for s in bindings.secret_catalogue(spec, env_name).values()
                    if s.ref and s.ref.startswith("env:") and s.ref[4:] not in environ}.items())
    try:
        ident = cloud.caller_identity(env.region)
        out.append(Check("aws credentials", True, f"account {ident['account']} as {ident['arn']}"))
    except ObskitError as exc:
        out.append(Check("aws credentials", False, _one_line(exc)))
        if unset:
            out.append(Check("secrets", False, "not set in this shell (promote copies them into SSM once): "
                             + ", ".join(var for var, _ in unset)))
        return out  # nothing else can be asked of AWS

    out.append(_secrets_check(resolved, env_name, unset))

    if env.hosted_zone_id:
        try:
            zone = cloud.hosted_zone_name(env.region, env.hosted_zone_id)
            ok = env.domain == zone or env.domain.endswith("." + zone)
            out.append(Check("dns", ok, f"{env.domain} is in hosted zone {zone}" if ok else
                             f"{env.domain} is not inside hosted zone {env.hosted_zone_id} ({zone})"))
        except ObskitError as exc:
            out.append(Check("dns", False, _one_line(exc)))
    if env.certificate_arn:
        try:
            cert = cloud.certificate(env.region, env.certificate_arn)
            names = [n for n in cert["names"] if n]
            ok_names = any(covers(n, env.domain) for n in names)
            ok = cert["status"] == "ISSUED" and ok_names
            detail = (f"certificate covers {env.domain} and is issued" if ok else
                      f"certificate is {cert['status']}" if cert["status"] != "ISSUED" else
                      f"certificate names {', '.join(names)} do not cover {env.domain}")
            out.append(Check("certificate", ok, detail))
        except ObskitError as exc:
            out.append(Check("certificate", False, _one_line(exc)))
    else:
        out.append(Check("certificate", True, f"a DNS-validated certificate for {env.domain} will be issued in the zone"))
    return out


def _one_line(exc: ObskitError) -> str:
    """The error's first line and its hint: what failed and what to do."""
    line = exc.message.splitlines()[0]
    return f"{line} ({exc.hint})" if getattr(exc, "hint", None) else line


def _secrets_check(resolved, env_name: str, unset) -> Check:
    """SSM is the source of truth: an env: secret needs to be set in this shell only while
    SSM does not hold it yet; the spec's own ssm: parameters must exist."""
    from obskit.promote import cloud
    from obskit.promote.ecs import ssm_parameter, user_ssm_parameters

    spec = resolved.spec
    env = resolved.environment(env_name)
    wanted = [ssm_parameter(spec, env_name, secret) for _, secret in unset]
    users = user_ssm_parameters(spec, env_name)
    try:
        present = cloud.read_parameters(env.region, wanted + users, decrypt=False)
    except ObskitError as exc:
        return Check("secrets", False, _one_line(exc))
    missing_env = [var for (var, secret), param in zip(unset, wanted) if param not in present]
    missing_ssm = [p for p in users if p not in present]
    problems = []
    if missing_env:
        problems.append("not set in this shell and not in SSM yet (promote copies them into SSM once): "
                        + ", ".join(missing_env))
    if missing_ssm:
        problems.append("the spec's SSM parameters do not exist: " + ", ".join(missing_ssm))
    return Check("secrets", not problems, "; ".join(problems) or "every secret is in SSM or set in this shell")


def require(checks: list[Check]) -> None:
    failed = [c for c in checks if not c.ok]
    if failed:
        lines = "\n".join(f"  - {c.name}: {c.detail}" for c in failed)
        error = PreflightFailed(f"preflight failed ({len(failed)} of {len(checks)} checks); nothing was changed:\n{lines}",
                                hint="fix these and run promote again")
        error.checks = [c.to_json() for c in checks]
        raise error
