"""The ECS task definitions that `obskit promote` renders, run on a real engine as ECS would
run them (obskit/runtime/ecs_local.py): obskit's own images built with buildx and pushed to
the local registry standing in for ECR, secrets read from SSM on moto by their ARNs, one
network with the Cloud Map names as aliases, the health checks, dependsOn and stopTimeout
as written. Only the substitution table differs from AWS, and it is pinned here.

Needs `.ci/engine` (or any engine with buildx and a registry at $OBSKIT_ENGINE_REGISTRY);
run inside its namespace: `.ci/engine run python -m pytest tests/test_ecs_local.py`. A
service whose image cannot be built (no Loki, Mimir or Grafana image on this engine) is not
run, and the checks that need it skip, naming the image.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid

import pytest
import requests

from obskit import bindings
from obskit.images import image_plans
from obskit.project import Project
from obskit.promote import cloud, ecs
from obskit.promote import secrets as ssm_secrets
from obskit.render import component_hashes, render, write_environment
from obskit.runtime import ecs_local
from obskit.runtime.ecs_local import SUBSTITUTIONS, LocalEcs, Locals, TaskFailed, localize
from obskit.spec.load import load_spec
from obskit.verify import METRIC_KINDS

from conftest import AWS_ENV
from engine_support import engine_or_skip

REGION = "eu-west-1"
REGISTRY = os.environ.get("OBSKIT_ENGINE_REGISTRY", "127.0.0.1:5000")
SPEC = "tenants:\n  - name: apps\n" + AWS_ENV


def _rendered(root, project_name: str, registry: str, versions=None):
    resolved = load_spec(_write(root, project_name), environ={})
    project = Project.of(resolved, root=root)
    files = render(resolved, "prod")
    write_environment(files, project.env_dir("prod"))
    hashes = component_hashes(files)
    plans = image_plans(resolved.spec, "prod", files, hashes)
    return resolved, project, plans, ecs.tfvars(resolved.spec, "prod", plans, hashes, registry, versions)


def _write(root, project_name: str):
    path = root / "obskit.yaml"
    path.write_text(f"project: {project_name}\n" + SPEC)
    return path


# --------------------------------------------------------------------------- the table (no engine)


def test_the_substitution_table_is_the_only_difference(tmp_path):
    """localize() changes exactly what the table names: no placeholder is left, and every
    other value of every container definition (image, entryPoint, command, environment,
    secrets, user, mountPoints, healthCheck, dependsOn, stopTimeout) is promote's."""
    _, _, _, tfvars = _rendered(tmp_path, "tbl", "123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    local = Locals(ssm_arn_prefix="arn:aws:ssm:eu-west-1:123456789012:parameter", database_endpoint="aurora.x:5432",
                   s3_endpoint="s3.x:9000", s3_access_key="AK", s3_secret_key="SK", metadata_uri="http://10.0.0.1:1")
    named = {s.name for s in SUBSTITUTIONS}
    assert len(SUBSTITUTIONS) <= 10, "the table grew: every row is a difference from AWS that nothing proves"
    for service, svc in tfvars["services"].items():
        original = json.loads(svc["container_definitions"])
        snapshot = json.dumps(original, sort_keys=True)
        out = localize(original, local)
        assert json.dumps(original, sort_keys=True) == snapshot, "localize must not change its input"
        assert "__OBSKIT_" not in json.dumps(out), service
        for before, after in zip(original, out):
            for key in set(before) | set(after):
                if key in ("environment", "secrets"):
                    continue
                assert before.get(key) == after.get(key), f"{service}/{before['name']}: {key} changed"
            env_before = {e["name"]: e["value"] for e in before.get("environment", [])}
            env_after = {e["name"]: e["value"] for e in after.get("environment", [])}
            changed = {k for k in env_before | env_after if env_before.get(k) != env_after.get(k)
                       and not any(s.name in env_before.get(k, "") for s in SUBSTITUTIONS if s.kind == "placeholder")}
            assert changed <= named, f"{service}/{before['name']}: {sorted(changed - named)} changed outside the table"
            assert [s["name"] for s in before.get("secrets", [])] == [s["name"] for s in after.get("secrets", [])]
            for s in after.get("secrets", []):
                assert s["valueFrom"].startswith(local.ssm_arn_prefix + "/obskit/tbl/prod/"), s
            assert env_after["ECS_CONTAINER_METADATA_URI_V4"] == f"http://10.0.0.1:1/v4/{before['name']}"
            if "S3_ENDPOINT" in env_before:
                assert env_after["S3_ENDPOINT"] == "s3.x:9000" and env_after["S3_ACCESS_KEY_ID"] == "AK"
            else:
                assert "S3_ACCESS_KEY_ID" not in env_after
    gateway = localize(json.loads(tfvars["services"]["gateway"]["container_definitions"]), local)[0]
    env = {e["name"]: e["value"] for e in gateway["environment"]}
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx/obskit"  # the image contract is not the table's
    assert env["OBSKIT_GW_RESOLVER"] == "127.0.0.11"
    grafana = localize(json.loads(tfvars["services"]["grafana"]["container_definitions"]), local)[0]
    assert {e["name"]: e["value"] for e in grafana["environment"]}["GF_DATABASE_HOST"] == "aurora.x:5432"


def test_a_health_check_is_carried_over_in_its_own_form():
    exec_form = ecs_local.health_config({"command": ["CMD", "/usr/bin/loki", "-health"], "interval": 15,
                                         "timeout": 5, "retries": 3, "startPeriod": 60})
    assert exec_form == {"Test": ["CMD", "/usr/bin/loki", "-health"], "Interval": 15_000_000_000,
                         "Timeout": 5_000_000_000, "Retries": 3, "StartPeriod": 60_000_000_000}
    shell = ecs_local.health_config({"command": ["CMD-SHELL", "curl -f x || exit 1"]})
    assert shell["Test"] == ["CMD-SHELL", "curl -f x || exit 1"] and shell["Interval"] == 30_000_000_000


# --------------------------------------------------------------------------- on the engine


def _registry_or_skip() -> None:
    try:
        requests.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.skip(f"no image registry at {REGISTRY} (the ECR stand-in; `.ci/engine up` starts one): {exc}")


@pytest.fixture(scope="module")
def prepared(moto_aws, tmp_path_factory):
    """promote --apply's steps up to Terraform: the secrets into SSM, the environment
    rendered, the tfvars, obskit's images built and pushed to the ECR stand-in."""
    engine_or_skip()
    _registry_or_skip()
    root = tmp_path_factory.mktemp("ecs-local")
    name = f"e{uuid.uuid4().hex[:6]}"
    resolved = load_spec(_write(root, name), environ={})
    state = ssm_secrets.sync(resolved, "prod", write=True, environ={})
    versions = ssm_secrets.versions_by_service(resolved, "prod", state)
    resolved, project, plans, tfvars = _rendered(root, name, REGISTRY, versions)
    t0 = time.monotonic()
    missing = ecs_local.build_images(plans, project.env_dir("prod"), REGISTRY)
    build_seconds = time.monotonic() - t0
    if "gateway" in missing:
        pytest.skip(f"the gateway's image cannot be built: {missing['gateway']}")
    return {"resolved": resolved, "project": project, "tfvars": tfvars, "missing": missing, "root": root,
            "build_seconds": build_seconds, "account": cloud.caller_identity(REGION)["account"], "state": state}


@pytest.fixture(scope="module")
def stack(prepared):
    """Every service whose images exist, from nothing to every health check passing."""
    tfvars = prepared["tfvars"]
    run, skipped = ecs_local.services_runnable(tfvars, prepared["missing"])
    lines: list[str] = []
    runner = LocalEcs(tfvars, account=prepared["account"], on_line=lines.append)
    t0 = time.monotonic()
    try:
        runner.start()
        comps = {tfvars["services"][s]["component"] for s in run}
        if comps & {"loki", "mimir"}:
            runner.start_object_store(prepared["resolved"].spec.images.versitygw, tfvars["buckets"].values())
        if "grafana" in comps:
            runner.start_database(prepared["resolved"].spec.images.postgres, prepared["root"])
        runner.run_tasks(run)
        total = time.monotonic() - t0
        yield {"runner": runner, "run": run, "skipped": skipped, "total": total, "lines": lines, **prepared}
    finally:
        stops = runner.stop_tasks()
        runner.down()
        print(f"\nECS-LOCAL stop seconds: {json.dumps(stops)}")


def _skip_unless(stack, *services: str) -> None:
    for s in services:
        if s not in stack["run"]:
            pytest.skip(f"{s} is not run: {stack['skipped'].get(s, 'not in the stack')}")


def test_every_health_check_passes(stack):
    runner = stack["runner"]
    assert "gateway" in stack["run"] and "otelcol" in stack["run"], stack["skipped"]
    report = {}
    for service in stack["run"]:
        task = runner.tasks[service]
        for d in task.definitions:
            run = task.containers[d["name"]]
            state = runner.engine.inspect(run.id)
            assert state["State"]["Running"], f"{service}/{d['name']}:\n{runner.engine.logs(run.id)}"
            if d.get("healthCheck"):
                assert state["State"]["Health"]["Status"] == "healthy"
                report[d["name"]] = round(run.seconds_to_healthy(), 1)
    print(f"\nECS-LOCAL images built and pushed in {stack['build_seconds']:.1f} s; "
          f"nothing to every health check passing in {stack['total']:.1f} s")
    print(f"ECS-LOCAL start-to-healthy seconds: {json.dumps(report)}")
    print(f"ECS-LOCAL not run: {json.dumps(stack['skipped'])}")


def test_the_definitions_values_reach_the_engine(stack):
    """What the engine runs is the definition: image by its registry URI, command,
    entryPoint, environment (secrets from SSM included), health check, stopTimeout; task
    volumes mounted fresh; sidecars in their task's network namespace."""
    runner = stack["runner"]
    values = stack["state"].values
    for service in stack["run"]:
        task = runner.tasks[service]
        holder = task.containers[task.definitions[0]["name"]].id
        for d in task.definitions:
            info = runner.engine.inspect(task.containers[d["name"]].id)
            cfg, host = info["Config"], info["HostConfig"]
            assert cfg["Image"] == d["image"] and d["image"].startswith(f"{REGISTRY}/")
            if "command" in d:
                assert cfg["Cmd"] == d["command"]
            if "entryPoint" in d:
                assert cfg["Entrypoint"] == d["entryPoint"]
            env = dict(e.split("=", 1) for e in cfg["Env"])
            for e in d["environment"]:
                assert env[e["name"]] == e["value"], e["name"]
            for s in d.get("secrets", []):
                param = s["valueFrom"].split(":parameter", 1)[1]
                assert env[s["name"]] == values[param], f"{s['name']} is not SSM's {param}"
            assert cfg.get("StopTimeout") == d.get("stopTimeout", cfg.get("StopTimeout"))
            if d.get("healthCheck"):
                assert cfg["Healthcheck"] == ecs_local.health_config(d["healthCheck"])
            assert host["ReadonlyRootfs"] == bool(d.get("readonlyRootFilesystem", False))
            assert cfg["User"] == d.get("user", "") or (not d.get("user"))
            mounts = {m["Destination"]: m for m in info["Mounts"]}
            for m in d.get("mountPoints", []):
                assert mounts[m["containerPath"]]["Type"] == "volume"
                assert mounts[m["containerPath"]]["Name"] == task.volumes[m["sourceVolume"]]
            if d is not task.definitions[0]:
                assert host["NetworkMode"] == f"container:{holder}"
            else:
                aliases = info["NetworkSettings"]["Networks"][runner.name]["Aliases"]
                assert f"{service}.{runner.namespace}" in aliases


def test_the_gateway_answers_the_albs_health_check(stack):
    """The target group's health check: HTTPS to the gateway's port and path from tfvars,
    certificate not verified (the ALB does not verify targets), 200 expected."""
    runner, svc = stack["runner"], stack["tfvars"]["services"]["gateway"]
    port = runner.tasks["gateway"].published(runner.engine, svc["port"])
    answer = requests.get(f"https://127.0.0.1:{port}{svc['health_path']}", verify=False, timeout=10)
    assert answer.status_code == 200, answer.text[:300]


def test_the_gateway_authenticates_with_the_secrets_ssm_holds(stack):
    """htpasswd and the TLS pair reached the gateway from SSM: its certificate is the one SSM
    holds, a tenant's password from SSM is accepted, a wrong one is refused."""
    runner, spec = stack["runner"], stack["resolved"].spec
    values = stack["state"].values
    port = runner.tasks["gateway"].published(runner.engine, 8443)
    ca = stack["root"] / "ca.pem"
    ca.write_text(values[ecs.ssm_parameter(spec, "prod", bindings.GATEWAY_CA_CERT)])
    users = ssm_secrets.gateway_users(spec)
    user = "apps-read"
    password = values[ecs.ssm_parameter(spec, "prod", users[user])]
    good = base64.b64encode(f"{user}:{password}".encode()).decode()
    bad = base64.b64encode(f"{user}:nope".encode()).decode()
    url = f"https://127.0.0.1:{port}/loki/api/v1/labels"
    ok = requests.get(url, verify=str(ca), headers={"Authorization": f"Basic {good}"}, timeout=30)
    wrong = requests.get(url, verify=str(ca), headers={"Authorization": f"Basic {bad}"}, timeout=30)
    assert wrong.status_code == 401
    # Loki answers when it runs; else the gateway answers for its missing upstream.
    expected = (200,) if "loki" in stack["run"] else (502, 503, 504)
    assert ok.status_code in expected, f"{ok.status_code}: {ok.text[:200]}\n{runner.logs('gateway')[-2000:]}"


def test_the_collector_reads_the_task_metadata_endpoint(stack):
    """The collector's ECS receiver needs ECS_CONTAINER_METADATA_URI_V4 (it refuses to start
    without it) and reads the task's stats there."""
    runner = stack["runner"]
    logs = runner.logs("otelcol")
    assert "unable to detect task metadata endpoint" not in logs, logs[-2000:]
    task = runner.tasks["otelcol"]
    meta = requests.get(f"{runner.metadata.uri}/v4/otelcol/task", timeout=10).json()
    assert {c["Name"] for c in meta["Containers"]} == set(task.containers)
    assert meta["Limits"]["Memory"] == stack["tfvars"]["services"]["otelcol"]["memory"]


VERIFY_GROUPS = {
    # what verify checks -> the services it needs
    "metrics": (sorted(METRIC_KINDS), ("mimir-1", "mimir-2", "mimir-3", "otelcol")),
    "logs": (["logs", "isolation_logs"], ("loki",)),
    "grafana": (["grafana_health", "grafana_datasources", "grafana_dashboards", "grafana_alerting"],
                ("grafana", "loki", "mimir-1", "mimir-2", "mimir-3")),
}


@pytest.mark.parametrize("group", sorted(VERIFY_GROUPS))
def test_obskit_verify_passes_through_the_gateway(stack, group):
    """`obskit verify`'s checks through the gateway's published port with the CA from SSM,
    as far as the images on this engine allow (each group skips naming what is missing)."""
    kinds, needs = VERIFY_GROUPS[group]
    _skip_unless(stack, *needs)
    from obskit.verify import Endpoints, cases_for, provisioned_alerting, provisioned_uids, run_verify

    runner, spec, project = stack["runner"], stack["resolved"].spec, stack["project"]
    values = stack["state"].values
    port = runner.tasks["gateway"].published(runner.engine, 8443)
    ca = stack["root"] / "verify-ca.pem"
    ca.write_text(values[ecs.ssm_parameter(spec, "prod", bindings.GATEWAY_CA_CERT)])
    users = ssm_secrets.gateway_users(spec)
    ds, dash = provisioned_uids(project.env_dir("prod") / "configs")
    rules, contacts = provisioned_alerting(project.env_dir("prod") / "configs")
    base = f"https://127.0.0.1:{port}"
    ep = Endpoints(gateway=base, grafana=f"{base}{spec.grafana.sub_path}", ca_file=str(ca),
                   passwords={u: values[ecs.ssm_parameter(spec, "prod", s)] for u, s in users.items()},
                   grafana_admin=(spec.grafana.admin_user,
                                  values[ecs.ssm_parameter(spec, "prod", bindings.grafana_admin_password(spec))]),
                   tenants=bindings.tenant_names(spec), datasource_uids=ds, dashboard_uids=dash,
                   rule_uids=rules, contact_points=contacts, metric_suffixes=spec.mimir.otel_metric_suffixes,
                   has_grafana="grafana" in stack["run"], has_mimir="mimir-1" in stack["run"])
    cases = cases_for(spec, kinds)
    assert cases, f"verify has no {group} checks"
    outcomes = run_verify(ep, cases, deadline_seconds=240)
    failed = [o for o in outcomes if not o.ok]
    assert not failed, "\n".join(f"{o.name}: {o.detail}" for o in failed)
    print(f"\nECS-LOCAL verify {group}: " + ", ".join(f"{o.name} {o.seconds:.1f}s" for o in outcomes))


def test_a_definition_without_the_images_output_folder_never_becomes_healthy(stack):
    """The gateway's definition without NGINX_ENVSUBST_OUTPUT_DIR (which compose gives the
    same image): the real image renders into conf.d instead, nginx exits on the missing
    config, and the task never becomes healthy. This is the defect issue 20 found on ECS.
    A second gateway task, beside the running stack (so that everything else it waits for
    is there) and outside the service's Cloud Map name."""
    runner = stack["runner"]
    defs = runner.definitions("gateway")
    defs[0]["environment"] = [e for e in defs[0]["environment"] if e["name"] != "NGINX_ENVSUBST_OUTPUT_DIR"]
    try:
        with pytest.raises(TaskFailed) as failed:
            runner.run_task("gateway", defs, timeout=150, task_id="gateway-without-output-dir", register=False)
        assert 'open() "/etc/nginx/obskit/nginx.conf" failed' in failed.value.logs, failed.value.logs
        assert "exited" in failed.value.reason, failed.value.reason
    finally:
        runner.stop_task("gateway-without-output-dir")
