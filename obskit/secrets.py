"""Generated secrets: created once per environment, kept outside version control.

The store is ``.obskit/secrets/<env>.json`` (directory 0700, file 0600). Passwords are
random (43 URL-safe characters, 256 bits); the gateway's CA and server certificate are
generated here; the htpasswd file is derived from the passwords. A second run reuses
everything; nothing here is ever printed or logged (``obskit secrets show`` is the only
way to reveal one).

Secrets the spec references (``env:VAR``, ``ssm:/path``) are never stored: they are read
from where they live when needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets as _secrets
import tempfile
from pathlib import Path
from typing import Mapping

from obskit import bindings, pki
from obskit.errors import ObskitError
from obskit.spec.model import AwsEnvironment, ComposeEnvironment, ProcessEnvironment, Spec

PASSWORD_BYTES = 32

# Secrets computed here rather than drawn at random.
DERIVED = frozenset(
    s.name
    for s in (bindings.GATEWAY_CA_CERT, bindings.GATEWAY_TLS_CERT, bindings.GATEWAY_TLS_KEY, bindings.GATEWAY_HTPASSWD)
)


def is_derived(name: str) -> bool:
    """Computed from other secrets: the gateway's PKI and htpasswd, and the ready-made
    ``Authorization`` header of a gateway user (``tenant-<user>-authorization``)."""
    return name in DERIVED or (name.startswith("tenant-") and name.endswith("-authorization"))


def authorization_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def generate_password() -> str:
    return _secrets.token_urlsafe(PASSWORD_BYTES)


def htpasswd_line(user: str, password: str) -> str:
    """An nginx htpasswd entry in the salted SHA-1 scheme ``{SSHA}``.

    nginx re-checks the hash on every request; bcrypt would cap the gateway at tens of
    requests per second. Passwords are 256-bit random strings, so a fast salted hash is
    not the weak point. The salt is derived from the user and password so the file is
    stable across runs (no needless gateway restarts) yet unique per user.
    """
    salt = hashlib.sha256(f"obskit:{user}:{password}".encode()).digest()[:8]
    digest = hashlib.sha1(password.encode() + salt).digest()
    return f"{user}:{{SSHA}}{base64.b64encode(digest + salt).decode()}"


def gateway_users(spec: Spec) -> dict[str, bindings.Secret]:
    """Every gateway user and the secret holding its password."""
    users: dict[str, bindings.Secret] = {}
    for tenant in bindings.tenant_names(spec):
        for role in ("write", "read"):
            users[f"{tenant}-{role}"] = bindings.tenant_password(tenant, role)
    users[spec.operators.admin_user] = bindings.ADMIN_PASSWORD
    users[bindings.alert_history_user(spec)] = bindings.tenant_password(spec.operators.tenant, "history")
    return users


def tls_names(spec: Spec, env_name: str) -> list[str]:
    """The names the gateway's certificate must cover in an environment."""
    env = spec.environments[env_name]
    names = ["gateway", "localhost", "127.0.0.1"]
    if isinstance(env, (ComposeEnvironment, ProcessEnvironment)):
        names.insert(0, env.hostname)
        if isinstance(env, ComposeEnvironment) and str(env.bind_address) not in ("127.0.0.1", "0.0.0.0"):
            names.append(str(env.bind_address))
    elif isinstance(env, AwsEnvironment):
        names = [env.domain, f"gateway.{env.service_namespace}", *names]
    return list(dict.fromkeys(names))


class SecretStore:
    """The generated secrets of one environment."""

    def __init__(self, state_dir: Path, env_name: str) -> None:
        self.dir = Path(state_dir) / "secrets"
        self.path = self.dir / f"{env_name}.json"
        self.env_name = env_name

    def load(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ObskitError(
                f"cannot read the secret store {self.path}: {exc}",
                hint="restore it from a backup, or delete it to generate new secrets (running stacks then need `obskit up` again)",
            ) from None

    def _save(self, data: Mapping[str, str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".secrets-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(dict(sorted(data.items())), fh, indent=2)
                fh.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def ensure(self, spec: Spec) -> tuple[dict[str, str], list[str]]:
        """Generate whatever is missing; return all values and the names just created."""
        data = self.load()
        created: list[str] = []
        catalogue = bindings.secret_catalogue(spec, self.env_name)
        needed = {s.name: s for s in catalogue.values()} | {
            s.name: s for s in gateway_users(spec).values()
        }
        for name, secret in sorted(needed.items()):
            if secret.ref or is_derived(name):
                continue
            if name not in data:
                data[name] = generate_password()
                created.append(name)
        # The CA lives as long as the store; the server certificate follows the names.
        if "gateway-ca-cert" not in data or "gateway-ca-key" not in data:
            ca = pki.new_ca(f"obskit {spec.project} {self.env_name} CA")
            data["gateway-ca-cert"], data["gateway-ca-key"] = ca.cert_pem, ca.key_pem
            data.pop("gateway-tls-cert", None)
            created.append("gateway-ca-cert")
        names = tls_names(spec, self.env_name)
        if "gateway-tls-cert" not in data or sorted(pki.cert_names(data["gateway-tls-cert"])) != sorted(names):
            server = pki.new_server_cert(pki.KeyPair(data["gateway-ca-cert"], data["gateway-ca-key"]), names)
            data["gateway-tls-cert"], data["gateway-tls-key"] = server.cert_pem, server.key_pem
            created.append("gateway-tls-cert")
        htpasswd = "\n".join(
            htpasswd_line(user, resolve(secret, data)) for user, secret in sorted(gateway_users(spec).items())
        )
        if data.get("gateway-htpasswd") != htpasswd:
            data["gateway-htpasswd"] = htpasswd
            created.append("gateway-htpasswd")
        for name in sorted(needed):
            if name.startswith("tenant-") and name.endswith("-authorization"):
                user = name[len("tenant-"):-len("-authorization")]
                header = authorization_header(user, resolve(bindings.Secret(f"tenant-{user}-password"), data))
                if data.get(name) != header:
                    data[name] = header
                    created.append(name)
        if created:
            self._save(data)
        return data, created


def resolve(secret: bindings.Secret, store: Mapping[str, str], environ: Mapping[str, str] | None = None) -> str:
    """The value of a secret: from the environment for env: references, else the store."""
    environ = os.environ if environ is None else environ
    if secret.ref and secret.ref.startswith("env:"):
        var = secret.ref[4:]
        if var not in environ:
            raise ObskitError(
                f"secret '{secret.name}' is read from ${var}, which is not set",
                hint=f"export {var}=... before running obskit",
            )
        return environ[var]
    if secret.ref:
        raise ObskitError(
            f"secret '{secret.name}' lives in {secret.ref}, which only AWS environments can read",
            hint="use env:VARIABLE for local environments",
        )
    try:
        return store[secret.name]
    except KeyError:
        raise ObskitError(
            f"secret '{secret.name}' has not been generated yet", hint="run `obskit up` (or `obskit secrets init`)"
        ) from None


def compose_environment(spec: Spec, env_name: str, store: Mapping[str, str]) -> dict[str, str]:
    """The process environment that gives docker compose every secret it interpolates."""
    out: dict[str, str] = {}
    for secret in bindings.secret_catalogue(spec, env_name).values():
        out[secret.env_var] = resolve(secret, store)
    return out


def resolve_env(
    service: bindings.Service,
    values: Mapping[str, str],
    outputs: Mapping[str, str] | None = None,
    local: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A service's environment with every secret (and output, and local value) resolved.

    ``values`` maps secret names to values (a secret store's content); env: references
    are read from the process environment by :func:`resolve`.
    """
    out: dict[str, str] = {}
    for key, binding in service.env.items():
        if isinstance(binding, bindings.Secret):
            out[key] = resolve(binding, values)
        elif isinstance(binding, bindings.Output):
            if outputs is None or binding.name not in outputs:
                raise KeyError(f"deploy-time output {binding.name} is not known yet")
            out[key] = outputs[binding.name]
        elif isinstance(binding, bindings.Local):
            if local is None or binding.what not in local:
                raise KeyError(f"local value {binding.what} is known only to the process runtime")
            out[key] = local[binding.what] + (f"/{binding.rel}" if binding.rel else "")
        else:
            out[key] = binding
    return out
