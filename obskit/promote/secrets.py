"""An AWS environment's secrets live in SSM Parameter Store, and SSM is their source of truth.

Every parameter is a SecureString under ``/obskit/<project>/<env>/``:

- *source* values: generated passwords (every gateway user's, Grafana's admin, the
  database's), the gateway CA (certificate and key), and the spec's ``env:`` references;
- *derived* values, computed from the source values and the spec: the gateway's htpasswd
  and the collector's ready-made ``Authorization`` headers (deterministic: the same
  passwords give the same bytes) and the gateway's server certificate (issued by the CA in
  SSM for the names the spec gives).

A promote reads them. It creates a source value only when it is missing, and never replaces
one: a fresh checkout, or a second machine, promotes the same environment without changing a
value. Derived values follow the spec (a new tenant, a new domain), computed from what SSM
holds, so they change only when the spec does. ``obskit secrets rotate NAME --env ENV`` is the
one way to replace a source value; it re-derives what depends on it. The services that read a
changed parameter are redeployed by the next apply (their ``secrets_version`` is a digest of
the SSM versions they read), and Aurora gets a rotated password because its password version
is the parameter's SSM version.

``ssm:/path`` references in the spec are the user's own parameters: obskit reads their
versions (so a change redeploys the services that use them) and never writes them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Mapping

from obskit import bindings, pki
from obskit.errors import ObskitError, UsageError
from obskit.promote import cloud
from obskit.promote.ecs import ssm_parameter, ssm_prefix
from obskit.secrets import authorization_header, generate_password, gateway_users, htpasswd_line, is_derived, tls_names

CA_KEY = "gateway-ca-key"  # kept in SSM (no task reads it) so that any checkout can issue certificates
DERIVED = ("gateway-htpasswd", "gateway-tls-cert", "gateway-tls-key")


@dataclass
class SsmState:
    """What SSM holds (or, in a plan, would hold) for one environment."""

    values: dict[str, str] = field(default_factory=dict)  # parameter name -> value
    versions: dict[str, int] = field(default_factory=dict)  # parameter name -> SSM version
    created: list[str] = field(default_factory=list)  # source values created now (or, in a plan, to create)
    updated: list[str] = field(default_factory=list)  # derived values re-derived now (or to re-derive)

    @property
    def written(self) -> list[str]:
        return sorted(self.created + self.updated)


def _name(spec, env_name: str, secret_name: str) -> str:
    return f"{ssm_prefix(spec, env_name)}/{secret_name}"


def source_secrets(spec, env_name: str) -> dict[str, bindings.Secret]:
    """Every source secret obskit keeps in SSM for the environment, by secret name."""
    out: dict[str, bindings.Secret] = {}
    for secret in bindings.secret_catalogue(spec, env_name).values():
        if secret.ref and secret.ref.startswith("ssm:"):
            continue
        if secret.name not in DERIVED and not is_derived(secret.name):
            out[secret.name] = secret
    for secret in gateway_users(spec).values():  # every user's password, used by a service or not
        out.setdefault(secret.name, secret)
    out[bindings.POSTGRES_PASSWORD.name] = bindings.POSTGRES_PASSWORD
    out[bindings.GATEWAY_CA_CERT.name] = bindings.GATEWAY_CA_CERT
    out[CA_KEY] = bindings.Secret(CA_KEY)
    return dict(sorted(out.items()))


def user_parameters(spec, env_name: str) -> list[str]:
    """The spec's own ``ssm:`` parameters (names as written after ``ssm:``)."""
    return sorted({s.ref[4:] for s in bindings.secret_catalogue(spec, env_name).values()
                   if s.ref and s.ref.startswith("ssm:")})


def _authorizations(spec, env_name: str) -> list[str]:
    """The derived ``tenant-<user>-authorization`` secrets the services read."""
    return sorted(n for n in bindings.secret_catalogue(spec, env_name)
                  if n.startswith("tenant-") and n.endswith("-authorization") and is_derived(n))


def all_parameters(spec, env_name: str) -> list[str]:
    names = [_name(spec, env_name, n) for n in source_secrets(spec, env_name)]
    names += [_name(spec, env_name, n) for n in (*DERIVED, *_authorizations(spec, env_name))]
    return sorted(names)


def _htpasswd(spec, env_name: str, values: Mapping[str, str]) -> str:
    return "\n".join(htpasswd_line(user, values[_name(spec, env_name, secret.name)])
                     for user, secret in sorted(gateway_users(spec).items()))


def _new_source(spec, env_name: str, name: str, secret: bindings.Secret, environ: Mapping[str, str],
                pending: dict[str, str]) -> str:
    if secret.ref and secret.ref.startswith("env:"):
        var = secret.ref[4:]
        if var not in environ:
            raise UsageError(f"secret '{name}' is read from ${var}, which is not set, and SSM does not hold it yet",
                             hint=f"export {var}=... and run again (obskit copies it into SSM once)")
        return environ[var]
    if name == bindings.GATEWAY_CA_CERT.name or name == CA_KEY:
        key = "ca"
        if key not in pending:
            ca = pki.new_ca(f"obskit {spec.project} {env_name} CA")
            pending[key] = ca.cert_pem
            pending[key + "-key"] = ca.key_pem
        return pending[key] if name == bindings.GATEWAY_CA_CERT.name else pending[key + "-key"]
    return generate_password()


def sync(resolved, env_name: str, *, write: bool, environ: Mapping[str, str] | None = None) -> SsmState:
    """Read the environment's parameters; create the missing source values and re-derive the
    derived ones when ``write`` (a plan only reports what it would do). Never replaces an
    existing source value."""
    environ = os.environ if environ is None else environ
    spec = resolved.spec
    env = resolved.environment(env_name)
    region = env.region
    sources = source_secrets(spec, env_name)
    current = cloud.read_parameters(region, all_parameters(spec, env_name))
    state = SsmState(values={k: v for k, (v, _) in current.items()}, versions={k: n for k, (_, n) in current.items()})

    pending: dict[str, str] = {}
    for name, secret in sources.items():
        param = _name(spec, env_name, name)
        if param in state.values:
            continue
        state.created.append(param)
        state.values[param] = _new_source(spec, env_name, name, secret, environ, pending)
    # The CA's certificate and key belong together: one without the other cannot issue.
    ca_cert, ca_key = _name(spec, env_name, bindings.GATEWAY_CA_CERT.name), _name(spec, env_name, CA_KEY)
    if (ca_cert in state.created) != (ca_key in state.created):
        raise ObskitError(f"SSM holds only one of {ca_cert} and {ca_key}",
                          hint=f"run `obskit secrets rotate gateway-ca-cert --env {env_name}` to issue a new CA")

    desired = dict(_derive(spec, env_name, state.values))
    for param, value in desired.items():
        if state.values.get(param) != value:
            state.updated.append(param)
            state.values[param] = value

    if write:
        for param in state.created:  # create only: a value another promote wrote meanwhile wins
            try:
                state.versions[param] = cloud.create_parameter(region, param, state.values[param], overwrite=False)
            except cloud.AwsError as exc:
                if "ParameterAlreadyExists" not in exc.message:
                    raise
                raise ObskitError(f"{param} was created by someone else while this promote ran",
                                  hint="run promote again: it reads the value that is there now") from None
        for param in state.updated:
            state.versions[param] = cloud.create_parameter(region, param, state.values[param], overwrite=True)
    return state


def _derive(spec, env_name: str, values: Mapping[str, str]) -> dict[str, str]:
    """The derived parameters' values from the source values: htpasswd always; the server
    certificate only when the current one is not for the spec's names or not from the CA."""
    out = {_name(spec, env_name, "gateway-htpasswd"): _htpasswd(spec, env_name, values)}
    for name in _authorizations(spec, env_name):
        user = name[len("tenant-"):-len("-authorization")]
        out[_name(spec, env_name, name)] = authorization_header(user, values[_name(spec, env_name, f"tenant-{user}-password")])
    cert_p, key_p = _name(spec, env_name, "gateway-tls-cert"), _name(spec, env_name, "gateway-tls-key")
    ca = pki.KeyPair(values[_name(spec, env_name, bindings.GATEWAY_CA_CERT.name)], values[_name(spec, env_name, CA_KEY)])
    names = tls_names(spec, env_name)
    cert = values.get(cert_p)
    if cert is None or key_p not in values or sorted(pki.cert_names(cert)) != sorted(names) or not _issued_by(cert, ca.cert_pem):
        server = pki.new_server_cert(ca, names)
        out[cert_p], out[key_p] = server.cert_pem, server.key_pem
    return out


def _issued_by(cert_pem: str, ca_pem: str) -> bool:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - any failure means "not this CA's"
        return False


def versions_by_service(resolved, env_name: str, state: SsmState) -> dict[str, str]:
    """service -> a digest of the SSM versions of every parameter it reads (a value created
    in a plan counts as version 0). A rotated parameter changes the digest of exactly the
    services that read it, and the ecs module redeploys those."""
    spec = resolved.spec
    env = resolved.environment(env_name)
    users = user_parameters(spec, env_name)
    user_versions = {}
    if users:
        user_versions = {k: n for k, (_, n) in cloud.read_parameters(env.region, users, decrypt=False).items()}
    out = {}
    for name, service in sorted(bindings.services(spec, env_name).items()):
        h = hashlib.sha256()
        for var, b in sorted(service.env.items()):
            if isinstance(b, bindings.Secret):
                param = ssm_parameter(spec, env_name, b)
                version = user_versions.get(param) if b.ref and b.ref.startswith("ssm:") else state.versions.get(param, 0)
                h.update(f"{var}={param}@{version}\n".encode())
        out[name] = h.hexdigest()[:16]
    return out


def task_values(resolved, env_name: str, state: SsmState) -> dict[str, str]:
    """SSM parameter name -> value, for what the tasks read from obskit's prefix."""
    spec = resolved.spec
    return {ssm_parameter(spec, env_name, s): state.values[ssm_parameter(spec, env_name, s)]
            for s in bindings.secret_catalogue(spec, env_name).values() if not (s.ref and s.ref.startswith("ssm:"))}


# --------------------------------------------------------------------------- rotation


@dataclass
class Rotation:
    secret: str
    parameters: list[str]  # written, in order
    services: list[str]  # redeployed by the next promote --apply
    notes: list[str]

    def to_json(self) -> dict:
        return self.__dict__.copy()


def rotate(resolved, env_name: str, name: str, *, environ: Mapping[str, str] | None = None) -> Rotation:
    """Replace one source secret in SSM and re-derive what depends on it. Values are never
    returned or printed."""
    environ = os.environ if environ is None else environ
    spec = resolved.spec
    env = resolved.environment(env_name)
    sources = source_secrets(spec, env_name)
    catalogue = bindings.secret_catalogue(spec, env_name)
    if name in DERIVED or name in _authorizations(spec, env_name):
        raise UsageError(f"'{name}' is derived from other secrets and the spec",
                         hint="rotate a password (htpasswd follows) or gateway-ca-cert (the server certificate follows)")
    if name in catalogue and catalogue[name].ref and catalogue[name].ref.startswith("ssm:"):
        raise UsageError(f"'{name}' is your own SSM parameter {catalogue[name].ref[4:]}",
                         hint="put the new value there; the next promote --apply redeploys the services that read it")
    if name == CA_KEY:
        name = bindings.GATEWAY_CA_CERT.name
    if name not in sources:
        import difflib

        close = difflib.get_close_matches(name, list(sources) + list(DERIVED), n=1)
        raise UsageError(f"no secret named '{name}' in environment '{env_name}'",
                         hint=f"did you mean '{close[0]}'?" if close else "`obskit secrets show --env ENV` lists them")

    state = sync(resolved, env_name, write=True, environ=environ)  # everything exists before one is replaced
    before = dict(state.versions)
    region = env.region
    written: list[str] = []
    values = dict(state.values)
    if name == bindings.GATEWAY_CA_CERT.name:
        ca = pki.new_ca(f"obskit {spec.project} {env_name} CA")
        values[_name(spec, env_name, name)], values[_name(spec, env_name, CA_KEY)] = ca.cert_pem, ca.key_pem
        values.pop(_name(spec, env_name, "gateway-tls-cert"))  # re-issued below by the new CA
        changed = [_name(spec, env_name, name), _name(spec, env_name, CA_KEY)]
    else:
        secret = sources[name]
        if secret.ref and secret.ref.startswith("env:"):
            var = secret.ref[4:]
            if var not in environ:
                raise UsageError(f"'{name}' is read from ${var}, which is not set", hint=f"export {var}=<new value>")
            values[_name(spec, env_name, name)] = environ[var]
        else:
            values[_name(spec, env_name, name)] = generate_password()
        changed = [_name(spec, env_name, name)]
    for param, value in _derive(spec, env_name, values).items():
        if state.values.get(param) != value:
            values[param] = value
            changed.append(param)
    for param in changed:
        state.versions[param] = cloud.create_parameter(region, param, values[param], overwrite=True)
        written.append(param)

    after = versions_by_service(resolved, env_name, state)
    old = versions_by_service(resolved, env_name, SsmState(state.values, before))
    services = sorted(s for s in after if after[s] != old[s])
    notes = []
    if name == bindings.POSTGRES_PASSWORD.name:
        notes.append("Aurora gets the new password at the next `obskit promote --apply` (its password version is "
                     "the parameter's SSM version); run it now: Grafana cannot log in until then")
    users = {s.name: u for u, s in gateway_users(spec).items()}
    if name in users:
        notes.append(f"clients that log in to the gateway as '{users[name]}' need the new password "
                     f"(`obskit secrets show {name} --env {env_name}`)")
    if name == bindings.GRAFANA_SECRET_KEY.name:
        notes.append("Grafana encrypts the secrets it keeps in its database with this key: after the next "
                     "`obskit promote --apply` it provisions obskit's datasources and contact points again "
                     "(their secrets come from SSM), but secrets entered by hand in Grafana can no longer be "
                     "read and must be entered again")
    if name == bindings.GATEWAY_CA_CERT.name:
        notes.append("clients that pin the gateway's CA need the new certificate "
                     f"(`obskit secrets show gateway-ca-cert --env {env_name}`)")
    notes.append(f"`obskit promote --env {env_name} --apply` redeploys: " + (", ".join(services) or "nothing"))
    return Rotation(name, written, services, notes)


def show(resolved, env_name: str) -> dict[str, str]:
    """secret name -> value, from SSM (for `obskit secrets show` on an AWS environment)."""
    spec = resolved.spec
    env = resolved.environment(env_name)
    prefix = ssm_prefix(spec, env_name) + "/"
    return {k[len(prefix):]: v for k, (v, _) in cloud.read_parameters(env.region, all_parameters(spec, env_name)).items()}
