"""Spec loading: layers, provenance, and one clear error for every kind of bad input."""

from __future__ import annotations

import os

import pytest

from obskit.errors import EnvironmentNotFound, SpecError
from obskit.spec.load import load_spec


def load(path=None, sets=(), environ=None):
    return load_spec(path, sets=sets, environ=environ or {}, use_default_file=path is not None)


# --------------------------------------------------------------------------- layering


def test_embedded_default_is_complete_and_valid():
    resolved = load()
    spec = resolved.spec
    assert [t.name for t in spec.tenants] == ["apps", "sandbox"]
    assert list(spec.environments) == ["local", "process"]
    assert spec.mimir.replicas == 3
    assert resolved.origin(("mimir", "replicas")) == "default"
    assert resolved.source_label == "embedded default spec"


def test_layers_file_then_env_then_set(write_spec):
    path = write_spec(
        """\
        mimir:
          replicas: 2
          replication_factor: 1
        loki:
          log_level: warn
        """
    )
    resolved = load(
        path,
        sets=["loki.log_level=error"],
        environ={"OBSKIT__MIMIR__REPLICAS": "1", "OBSKIT__LOKI__LOG_LEVEL": "debug"},
    )
    spec = resolved.spec
    assert spec.mimir.replicas == 1  # env beats file
    assert spec.loki.log_level == "error"  # --set beats env
    assert spec.mimir.replication_factor == 1  # file beats default
    assert resolved.origin(("mimir", "replicas")) == "environment variable OBSKIT__MIMIR__REPLICAS"
    assert resolved.origin(("loki", "log_level")) == "command line (--set)"
    assert resolved.origin(("mimir", "replication_factor")) == f"{path}:3"
    assert resolved.origin(("grafana", "admin_user")) == "default"


def test_file_mapping_merges_with_default_environments(aws_spec):
    # aws_spec declares local and prod; a file declaring only prod keeps the default local.
    text = aws_spec.read_text()
    aws_spec.write_text(text.replace("  local:\n    kind: compose\n", ""))
    spec = load(aws_spec).spec
    assert sorted(spec.environments) == ["local", "process", "prod"]  # mappings merge key by key


def test_lists_replace_and_set_indexes_into_them(write_spec):
    path = write_spec("tenants:\n  - name: one\n  - name: two\n")
    resolved = load(path, sets=["tenants[1].limits.burst=7"])
    assert [t.name for t in resolved.spec.tenants] == ["one", "two"]
    assert resolved.spec.tenants[1].limits.burst == 7
    assert resolved.origin(("tenants", 1, "limits", "burst")) == "command line (--set)"
    assert resolved.origin(("tenants", 0, "name")) == f"{path}:2"


def test_loading_never_writes_the_spec_back(write_spec):
    path = write_spec("mimir:\n  replicas: 2\n  replication_factor: 2\n")
    before = path.read_bytes(), os.stat(path).st_mtime_ns
    load(path, sets=["loki.log_level=debug"])
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before


def test_digest_is_stable_and_sensitive():
    a, b = load(), load()
    assert a.digest() == b.digest()
    assert load(sets=["loki.log_level=debug"]).digest() != a.digest()


# --------------------------------------------------------------------------- errors


def error_for(write_spec, text, **kw) -> SpecError:
    path = write_spec(text)
    with pytest.raises(SpecError) as info:
        load(path, **kw)
    return info.value


def test_unknown_key_names_file_line_key_and_suggests(write_spec):
    err = error_for(write_spec, "mimir:\n  replicass: 2\n")
    text = str(err)
    assert text.startswith(f"{write_spec('x', 'unused.yaml').parent}/obskit.yaml:2: mimir.replicass: unknown key 'replicass'")
    assert "did you mean 'replicas'?" in text
    assert err.exit_code == 2


def test_wrong_type(write_spec):
    err = error_for(write_spec, "mimir:\n  replicas: three\n")
    assert "obskit.yaml:2: mimir.replicas: wrong type: expected a whole number" in str(err)
    assert err.hint


def test_bad_port(write_spec):
    err = error_for(
        write_spec,
        "environments:\n  local:\n    kind: compose\n    ports:\n      gateway_https: 70000\n",
    )
    assert "obskit.yaml:5: environments.local.ports.gateway_https: bad port 70000" in str(err)


def test_port_clash(write_spec):
    err = error_for(
        write_spec,
        "environments:\n  local:\n    kind: compose\n    ports:\n      gateway_https: 8080\n",
    )
    assert "both use port 8080" in str(err)


def test_duplicate_tenant(write_spec):
    err = error_for(write_spec, "tenants:\n  - name: apps\n  - name: web\n  - name: apps\n")
    assert "obskit.yaml:4: tenants[2].name: duplicate tenant 'apps'" in str(err)
    assert "first declared at tenants[0]" in str(err)


def test_plain_text_secret_is_refused_without_echoing_it(write_spec):
    err = error_for(write_spec, "grafana:\n  admin_password: hunter2-very-secret\n")
    text = str(err)
    assert "obskit.yaml:2: grafana.admin_password: a secret is written here in plain text" in text
    assert "env:VARIABLE" in text  # the hint says what to write instead
    assert "hunter2" not in text


def test_plain_text_secret_via_set_is_not_echoed():
    with pytest.raises(SpecError) as info:
        load(sets=["object_store.secret_access_key=s3cr3t-value"])
    assert "s3cr3t" not in str(info.value)
    assert "object_store.secret_access_key" in str(info.value)


def test_secret_reference_is_accepted(write_spec):
    path = write_spec("grafana:\n  admin_password: env:MY_GRAFANA_PASSWORD\n")
    assert load(path).spec.grafana.admin_password == "env:MY_GRAFANA_PASSWORD"


def test_unknown_environment():
    resolved = load()
    with pytest.raises(EnvironmentNotFound) as info:
        resolved.environment("lokal")
    text = str(info.value)
    assert "unknown environment 'lokal' (declared: local, process)" in text
    assert "did you mean 'local'?" in text
    assert info.value.exit_code == 2


def test_unreadable_file(write_spec):
    path = write_spec("project: x\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # root reads anything: use a directory instead
            path.chmod(0o644)
            path = path.parent
        with pytest.raises(SpecError) as info:
            load(path)
    finally:
        if path.is_file():
            path.chmod(0o644)
    assert "cannot read the spec file" in str(info.value) or "the spec path is a folder" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load(tmp_path / "nope.yaml")
    assert "spec file not found" in str(info.value)
    assert "obskit init" in str(info.value)


def test_invalid_yaml_reports_its_line(write_spec):
    err = error_for(write_spec, "project: x\ntenants:\n  - name: apps\n   bad: [\n")
    assert "obskit.yaml:4: invalid YAML" in str(err)


def test_top_level_must_be_a_mapping(write_spec):
    err = error_for(write_spec, "- just\n- a list\n")
    assert "must be a mapping" in str(err)


def test_unknown_environment_kind(write_spec):
    err = error_for(write_spec, "environments:\n  prod:\n    kind: k8s\n")
    assert "obskit.yaml:2: environments.prod: unknown kind 'k8s'" in str(err)


def test_aws_environment_needs_certificate_source(write_spec):
    err = error_for(
        write_spec,
        "environments:\n  prod:\n    kind: aws\n    region: eu-west-1\n    domain: obs.example.com\n    bucket_prefix: acme-obs-\n",
    )
    assert "environments.prod.certificate_arn" in str(err)


def test_invalid_fargate_size(write_spec):
    err = error_for(
        write_spec,
        """\
        environments:
          prod:
            kind: aws
            region: eu-west-1
            domain: obs.example.com
            hosted_zone_id: Z0123456789ABCDEFGHIJ
            bucket_prefix: acme-obs-prod-
            sizes:
              loki: {cpu: 256, memory: 8192}
        """,
    )
    assert "environments.prod.sizes.loki.memory" in str(err)
    assert "does not fit cpu 256" in str(err)


def test_floating_image_tag_is_refused():
    with pytest.raises(SpecError) as info:
        load(sets=["images.loki=grafana/loki:latest"])
    assert "floating tag 'latest'" in str(info.value)
    with pytest.raises(SpecError):
        load(sets=["images.loki=grafana/loki:3.7"])


def test_gateway_image_must_read_upstream_resolve():
    with pytest.raises(SpecError) as info:
        load(sets=["images.gateway=nginx:1.26.3"])
    assert "images.gateway" in str(info.value) and "1.27.3" in str(info.value)
    assert load(sets=["images.gateway=nginx:1.27.3"]).spec.images.gateway == "nginx:1.27.3"
    assert load(sets=["images.gateway=nginx:1.30.5@sha256:" + "a" * 64]).spec.images.gateway.startswith("nginx:1.30.5@")


def test_replication_factor_follows_replicas_unless_set(write_spec):
    # The README's examples work: the replication factor follows replicas (at most 3).
    assert load(environ={"OBSKIT__MIMIR__REPLICAS": "1"}).spec.mimir.replication_factor == 1
    assert load(sets=["mimir.replicas=1"]).spec.mimir.replication_factor == 1
    assert load(sets=["mimir.replicas=2"]).spec.mimir.replication_factor == 2
    assert load(sets=["mimir.replicas=5"]).spec.mimir.replication_factor == 3
    # Set explicitly above replicas: refused, blaming the layer that wrote it.
    path = write_spec("mimir:\n  replication_factor: 3\n")
    with pytest.raises(SpecError) as info:
        load(path, environ={"OBSKIT__MIMIR__REPLICAS": "1"})
    assert str(info.value).startswith(f"{path}:2: mimir.replication_factor: replication_factor 3 is larger than replicas 1")
    with pytest.raises(SpecError) as info:
        load(sets=["mimir.replicas=2", "mimir.replication_factor=3"])
    assert str(info.value).startswith("command line (--set): mimir.replication_factor")


def test_env_var_errors_name_the_variable():
    with pytest.raises(SpecError) as info:
        load(environ={"OBSKIT__MIMIR__REPLICAS": "many"})
    assert str(info.value).startswith("environment variable OBSKIT__MIMIR__REPLICAS: mimir.replicas: wrong type")


def test_all_problems_reported_in_one_pass(write_spec):
    err = error_for(write_spec, "mimir:\n  replicas: x\nloki:\n  log_level: loud\n")
    assert "mimir.replicas" in str(err) and "loki.log_level" in str(err)


def test_set_without_equals():
    with pytest.raises(SpecError) as info:
        load(sets=["mimir.replicas"])
    assert "--set expects key=value" in str(info.value)
