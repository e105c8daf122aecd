"""Generated secrets: made once, 0600, reused, never in rendered output."""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
import stat

import pytest

from obskit import pki
from obskit.errors import ObskitError
from obskit.secrets import SecretStore, compose_environment, htpasswd_line, resolve, tls_names
from obskit import bindings
from obskit.spec.load import load_spec


@pytest.fixture
def spec():
    return load_spec(None, environ={}, use_default_file=False).spec


def test_secrets_are_generated_once_with_0600(tmp_path, spec):
    store = SecretStore(tmp_path / ".obskit", "local")
    first, created = store.ensure(spec)
    assert "grafana-admin-password" in created and "gateway-htpasswd" in created
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.dir).st_mode) == 0o700
    again, created_again = store.ensure(spec)
    assert created_again == [] and again == first
    for name in ("grafana-admin-password", "postgres-password", "tenant-apps-write-password", "gateway-admin-password"):
        assert len(first[name]) >= 32
    assert first["grafana-admin-password"] != "admin"
    assert len({first[n] for n in first if n.endswith("-password")}) == len([n for n in first if n.endswith("-password")])


def test_new_tenant_adds_only_its_secrets(tmp_path, spec):
    store = SecretStore(tmp_path, "local")
    before, _ = store.ensure(spec)
    bigger = load_spec(None, environ={}, use_default_file=False,
                       sets=["tenants[2].name=web"]).spec
    after, created = store.ensure(bigger)
    assert set(created) == {"tenant-web-write-password", "tenant-web-read-password", "gateway-htpasswd"}
    assert all(after[k] == v for k, v in before.items() if k != "gateway-htpasswd")


def test_htpasswd_is_salted_sha_that_verifies(spec, tmp_path):
    line = htpasswd_line("apps-write", "pw-123")
    user, _, rest = line.partition(":")
    assert user == "apps-write" and rest.startswith("{SSHA}")
    raw = base64.b64decode(rest[len("{SSHA}"):])
    digest, salt = raw[:20], raw[20:]
    assert hashlib.sha1(b"pw-123" + salt).digest() == digest
    assert htpasswd_line("apps-read", "pw-123") != line  # salt differs per user
    store, _ = SecretStore(tmp_path, "local").ensure(spec)
    users = [l.split(":")[0] for l in store["gateway-htpasswd"].splitlines()]
    assert users == sorted(["apps-write", "apps-read", "sandbox-write", "sandbox-read", "ops-write", "ops-read", "obskit-admin",
                           "ops-history"])  # Grafana's alert state history writer


def test_server_certificate_verifies_against_the_ca(tmp_path, spec):
    store, _ = SecretStore(tmp_path, "local").ensure(spec)
    assert sorted(pki.cert_names(store["gateway-tls-cert"])) == sorted(tls_names(spec, "local"))
    ca = tmp_path / "ca.pem"
    ca.write_text(store["gateway-ca-cert"])
    ctx = ssl.create_default_context(cafile=str(ca))
    # Verify the chain with the standard library: load the leaf through a verify callback.
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store
    leaf = x509.load_pem_x509_certificate(store["gateway-tls-cert"].encode())
    root = x509.load_pem_x509_certificate(store["gateway-ca-cert"].encode())
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName("localhost"))
    verifier.verify(leaf, [])
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_aws_certificate_covers_domain_and_service_name(tmp_path, aws_spec):
    spec = load_spec(aws_spec, environ={}).spec
    store, _ = SecretStore(tmp_path, "prod").ensure(spec)
    names = pki.cert_names(store["gateway-tls-cert"])
    assert "obs.example.com" in names and "gateway.observability.local" in names


def test_env_references_are_read_not_stored(tmp_path, write_spec):
    path = write_spec("grafana:\n  admin_password: env:MY_GF_PW\n")
    spec = load_spec(path, environ={}).spec
    data, _ = SecretStore(tmp_path, "local").ensure(spec)
    assert "grafana-admin-password" not in data
    secret = bindings.grafana_admin_password(spec)
    assert resolve(secret, data, {"MY_GF_PW": "from-env"}) == "from-env"
    with pytest.raises(ObskitError) as info:
        resolve(secret, data, {})
    assert "$MY_GF_PW" in str(info.value) and "from-env" not in str(info.value)
    env = compose_environment(spec, "local", data) if "MY_GF_PW" in os.environ else None
    assert env is None or env["MY_GF_PW"]


def test_compose_environment_carries_every_interpolated_secret(tmp_path, spec):
    data, _ = SecretStore(tmp_path, "local").ensure(spec)
    env = compose_environment(spec, "local", data)
    assert set(env) == {s.env_var for s in bindings.secret_catalogue(spec, "local").values()}
    assert env["OBSKIT_SECRET_GATEWAY_HTPASSWD"] == data["gateway-htpasswd"]


def test_corrupt_store_is_a_clear_error(tmp_path, spec):
    store = SecretStore(tmp_path, "local")
    store.dir.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(ObskitError) as info:
        store.ensure(spec)
    assert "cannot read the secret store" in str(info.value)
    assert store.path.read_text() == "{not json"  # never overwritten: no data is lost
