"""Mimir's replicas roll one at a time (issue 22, item 13).

Replacing one Mimir replica at a time costs nothing; replacing all three at once (what a
Terraform apply does: one for_each, updated in parallel) gave 3.2-3.4 s of 503s and a minute
of incomplete queries (load/bench/results/mimir_rolling.md). So the ecs module creates the
replicas' services but ignores a new task definition, and `obskit promote --apply` rolls them
after the apply, in replica order, each steady before the next (cloud.roll_services).

Against ECS's API as moto serves it, in this process (ThreadedMotoServer), so the test can
play ECS's part moto leaves out: moto's UpdateService changes a service's task definition but
never starts a deployment of it. `FakeEcs.tick`, called where the roll sleeps, does what ECS
does (a new PRIMARY deployment IN_PROGRESS beside the old one, then COMPLETED alone, or FAILED
and rolled back) and records what every service looks like at that moment. The clock is a
fake: no test sleeps. The Terraform half is checked in the HCL (python-hcl2) and with
`terraform console` on the module's locals.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import uuid

import hcl2
import pytest

from obskit.promote import cloud
from obskit.promote.run import planned_rolls, roll, rolled_services
from obskit.spec.load import load_spec

from conftest import REPO, require_tool

REGION = "eu-west-1"
ACCOUNT = "123456789012"
REPLICAS = ["mimir-1", "mimir-2", "mimir-3"]
ECS_TF = REPO / "terraform" / "modules" / "ecs"


@pytest.fixture
def ecs_api(monkeypatch, tmp_path):
    """moto's ECS API on a free loopback port, served from this process; its backend."""
    pytest.importorskip("moto", reason="moto[server] is not installed")
    from moto.ecs.models import ecs_backends
    from moto.server import ThreadedMotoServer

    from obskit.loopback import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # moto reads this when it creates a service: its one task runs and the deployment is COMPLETED.
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    try:
        yield ecs_backends[ACCOUNT][REGION]
    finally:
        server.stop()


@pytest.fixture
def calls(monkeypatch):
    """The UpdateService calls the roll makes, in order (a botocore hook on its clients)."""
    made: list[tuple[str, str]] = []
    real = cloud.client

    def client(service, region):
        c = real(service, region)
        c.meta.events.register("provide-client-params.ecs.UpdateService",
                               lambda params, **_: made.append((params["service"], params.get("taskDefinition", ""))))
        return c

    monkeypatch.setattr(cloud, "client", client)
    return made


class FakeClock:
    def __init__(self, on_sleep=None):
        self.now, self.on_sleep, self.sleeps = 1000.0, on_sleep, 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        assert self.sleeps < 500, "the roll never gave up waiting"
        self.now += seconds
        if self.on_sleep:
            self.on_sleep()


class FakeEcs:
    """What ECS does after UpdateService and moto does not: at each tick a service whose task
    definition changed gets a new PRIMARY deployment IN_PROGRESS (the old one ACTIVE beside
    it); ``ticks`` later it is COMPLETED alone. A service in ``stuck`` never gets there; one
    in ``fail`` is failed by the circuit breaker and rolled back. Every tick is recorded."""

    def __init__(self, backend, cluster: str, *, ticks: int = 2, stuck=(), fail=()):
        self.backend, self.cluster, self.ticks = backend, cluster, ticks
        self.stuck, self.fail = set(stuck), set(fail)
        self.timeline: list[dict[str, str]] = []
        self.age: dict[str, int] = {}

    def services(self) -> dict:
        return {s.name: s for key, s in self.backend.services.items() if key.startswith(self.cluster + ":")}

    def snapshot(self) -> dict[str, str]:
        """service -> "rev" when steady on it, "old->new" while a deployment of new is under way."""
        out = {}
        for name, svc in self.services().items():
            rev = svc.task_definition.rsplit(":", 1)[-1]
            deps = svc.deployments
            done = len(deps) == 1 and deps[0]["taskDefinition"] == svc.task_definition and deps[0]["rolloutState"] == "COMPLETED"
            old = next((d["taskDefinition"] for d in deps if d["taskDefinition"] != svc.task_definition), deps[0]["taskDefinition"])
            out[name] = rev if done else f"{old.rsplit(':', 1)[-1]}->{rev}"
        return out

    def tick(self) -> None:
        self.timeline.append(self.snapshot())
        for name, svc in self.services().items():
            deps = svc.deployments
            primary = deps[0]
            if primary["taskDefinition"] != svc.task_definition and primary["rolloutState"] == "COMPLETED":
                new = dict(primary, id=f"ecs-svc/{uuid.uuid4().hex[:12]}", taskDefinition=svc.task_definition,
                           rolloutState="IN_PROGRESS", runningCount=0, pendingCount=1, status="PRIMARY")
                svc.deployments = [new, dict(primary, status="ACTIVE")]
                self.age[name] = 0
            elif len(deps) == 2 and name not in self.stuck:
                self.age[name] += 1
                if self.age[name] < self.ticks:
                    continue
                if name in self.fail:  # the circuit breaker: the new deployment FAILED, the old one back
                    failed = dict(deps[0], status="ACTIVE", rolloutState="FAILED",
                                  rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.")
                    svc.task_definition = deps[1]["taskDefinition"]
                    svc.deployments = [dict(deps[1], status="PRIMARY", rolloutState="IN_PROGRESS"), failed]
                    self.fail.discard(name)
                else:
                    svc.deployments = [dict(deps[0], rolloutState="COMPLETED", runningCount=1, pendingCount=0)]


def deploy(backend_ecs_client, cluster: str) -> dict[str, tuple[str, str]]:
    """Three Mimir replicas running revision 1 of their task definitions; revision 2 of each
    registered (what a Terraform apply of a config change leaves). name -> (rev 1, rev 2)."""
    ecs = backend_ecs_client
    ecs.create_cluster(clusterName=cluster)
    arns = {}
    for name in REPLICAS:
        family = f"{cluster}-{name}"
        revs = [ecs.register_task_definition(family=family, containerDefinitions=[
            {"name": name, "image": f"x/mimir:cfg-{i}", "essential": True, "cpu": 256, "memory": 512}])
            ["taskDefinition"]["taskDefinitionArn"] for i in (1, 2)]
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=revs[0], desiredCount=1)
        arns[name] = (revs[0], revs[1])
    return arns


@pytest.fixture
def stack(ecs_api):
    cluster = f"obskit-{uuid.uuid4().hex[:6]}"
    arns = deploy(cloud.client("ecs", REGION), cluster)
    return {"cluster": cluster, "arns": arns, "new": [(n, arns[n][1]) for n in REPLICAS],
            "old": [(n, arns[n][0]) for n in REPLICAS], "backend": ecs_api}


def in_flight(snapshot: dict[str, str]) -> list[str]:
    return [name for name, state in snapshot.items() if "->" in state]


def check_one_at_a_time(timeline: list[dict[str, str]]) -> list[str]:
    """What is wrong with a recorded roll of mimir-1..3 from revision 1 to 2: more than one
    replica in flight at a moment, a replica moved before the one before it was steady, or a
    replica never seen in flight (not waited for)."""
    faults = []
    for i, snap in enumerate(timeline):
        if len(in_flight(snap)) > 1:
            faults.append(f"tick {i}: {', '.join(in_flight(snap))} in flight together")
        moved = [snap[n] != "1" for n in REPLICAS]
        steady = [snap[n] == "2" for n in REPLICAS]
        for k in range(1, len(REPLICAS)):
            if moved[k] and not steady[k - 1]:
                faults.append(f"tick {i}: {REPLICAS[k]} moved before {REPLICAS[k - 1]} was steady")
    for name in REPLICAS:
        if not any(name in in_flight(s) for s in timeline):
            faults.append(f"{name} was never waited for")
    return faults


def test_the_replicas_roll_one_at_a_time_in_order_each_waited_for(stack, calls):
    ecs = FakeEcs(stack["backend"], stack["cluster"])
    clock = FakeClock(ecs.tick)
    lines: list[str] = []
    updated = cloud.roll_services(REGION, stack["cluster"], stack["new"], on_line=lines.append,
                                  clock=clock.clock, sleep=clock.sleep)
    assert check_one_at_a_time(ecs.timeline) == [], ecs.timeline
    assert updated == REPLICAS
    assert calls == [(n, stack["arns"][n][1]) for n in REPLICAS]
    assert ecs.snapshot() == {n: "2" for n in REPLICAS}
    # A progress line per replica: which one, of how many, from what to what, and when it was steady.
    for i, name in enumerate(REPLICAS, start=1):
        family = f"{stack['cluster']}-{name}"
        assert f"{name} ({i}/3): rolling from {family}:1 to {family}:2" in lines
        assert any(re.fullmatch(rf"{name} \({i}/3\): steady on {family}:2 after \d+ s \(1 task\(s\) running .*", ln)
                   for ln in lines), lines


def test_the_order_check_catches_a_parallel_roll_and_one_not_waited_for():
    """The check above, fed what a parallel roll (Terraform's for_each) and a roll that does
    not wait would record."""
    parallel = [{"mimir-1": "1->2", "mimir-2": "1->2", "mimir-3": "1->2"}, {n: "2" for n in REPLICAS}]
    assert "tick 0: mimir-1, mimir-2, mimir-3 in flight together" in check_one_at_a_time(parallel)
    unwaited = [{"mimir-1": "2", "mimir-2": "2", "mimir-3": "1->2"}]
    assert check_one_at_a_time(unwaited) == ["mimir-1 was never waited for", "mimir-2 was never waited for"]
    early = [{"mimir-1": "1->2", "mimir-2": "1", "mimir-3": "1"}, {"mimir-1": "1->2", "mimir-2": "1->2", "mimir-3": "1"}]
    assert "tick 1: mimir-2 moved before mimir-1 was steady" in check_one_at_a_time(early)


def test_an_unchanged_task_definition_rolls_nothing(stack, calls):
    clock = FakeClock(FakeEcs(stack["backend"], stack["cluster"]).tick)
    lines: list[str] = []
    assert cloud.roll_services(REGION, stack["cluster"], stack["old"], on_line=lines.append,
                               clock=clock.clock, sleep=clock.sleep) == []
    assert calls == [] and clock.sleeps == 0
    assert lines == [f"{n} ({i}/3): already on {stack['cluster']}-{n}:1: nothing to roll" for i, n in enumerate(REPLICAS, 1)]


def test_a_roll_that_never_becomes_steady_stops_naming_the_replica_and_a_rerun_finishes(stack, calls):
    ecs = FakeEcs(stack["backend"], stack["cluster"], stuck={"mimir-2"})
    clock = FakeClock(ecs.tick)
    with pytest.raises(cloud.AwsError) as info:
        cloud.roll_services(REGION, stack["cluster"], stack["new"], deadline_seconds=120, poll_seconds=10,
                            clock=clock.clock, sleep=clock.sleep)
    family = f"{stack['cluster']}-mimir-2"
    assert info.value.message == (f"mimir-2 was not steady on {family}:2 within 120 s (0 of 1 new task(s) running, "
                                  "rollout IN_PROGRESS, 1 older deployment(s) still stopping (flushing to S3)); "
                                  "not rolled: mimir-3")
    assert "obskit promote --apply" in info.value.hint and info.value.exit_code == 4
    assert ecs.snapshot() == {"mimir-1": "2", "mimir-2": "1->2", "mimir-3": "1"}  # mimir-3 untouched
    # The re-run: mimir-1 is left alone, mimir-2 (already on its new definition) is only
    # waited for, mimir-3 is rolled.
    ecs.stuck.clear()
    calls.clear()
    lines: list[str] = []
    assert cloud.roll_services(REGION, stack["cluster"], stack["new"], on_line=lines.append,
                               clock=clock.clock, sleep=clock.sleep) == ["mimir-3"]
    assert calls == [("mimir-3", stack["arns"]["mimir-3"][1])]
    assert f"mimir-2 (2/3): on {family}:2, its deployment is still under way: waiting for it" in lines
    assert ecs.snapshot() == {n: "2" for n in REPLICAS}


def test_a_rollout_ecs_fails_stops_the_roll_at_once_and_a_rerun_tries_again(stack, calls):
    ecs = FakeEcs(stack["backend"], stack["cluster"], fail={"mimir-1"})
    clock = FakeClock(ecs.tick)
    with pytest.raises(cloud.AwsError) as info:
        cloud.roll_services(REGION, stack["cluster"], stack["new"], clock=clock.clock, sleep=clock.sleep)
    assert info.value.message.startswith("rolling mimir-1 to ")
    assert "ECS failed the deployment: ECS deployment circuit breaker: tasks failed to start." in info.value.message
    assert info.value.message.endswith("not rolled: mimir-2, mimir-3")
    assert calls == [("mimir-1", stack["arns"]["mimir-1"][1])]
    assert ecs.snapshot()["mimir-2"] == "1" and ecs.snapshot()["mimir-3"] == "1"
    calls.clear()  # the cause fixed, a re-run rolls mimir-1 again and then the others
    assert cloud.roll_services(REGION, stack["cluster"], stack["new"], clock=clock.clock, sleep=clock.sleep) == REPLICAS


def test_promote_rolls_in_replica_order_what_terraform_registered(stack, calls):
    """run.roll takes the targets from the root output rolled_task_definitions (a map, in
    whatever order) and the order from the spec; an output without them is an error."""
    ecs = FakeEcs(stack["backend"], stack["cluster"])
    clock = FakeClock(ecs.tick)
    outputs = {"cluster_name": stack["cluster"],
               "rolled_task_definitions": {n: stack["arns"][n][1] for n in reversed(REPLICAS)}}
    assert roll(REGION, outputs, REPLICAS, clock=clock.clock, sleep=clock.sleep) == REPLICAS
    assert [name for name, _ in calls] == REPLICAS
    from obskit.errors import ObskitError

    with pytest.raises(ObskitError, match="name no task definition for mimir-3"):
        roll(REGION, {"cluster_name": stack["cluster"], "rolled_task_definitions": {}}, ["mimir-3"])


def test_the_rolled_services_are_the_mimir_replicas_in_order():
    resolved = load_spec(REPO / "tests" / "fixtures" / "alerting.yaml", environ={})
    assert rolled_services(resolved.spec, "prod") == resolved.spec.mimir_replicas == REPLICAS


# ---------------------------------------------------------------------------------- --plan


def _plan(changes: dict[str, list[str]], prior: dict[str, dict]) -> dict:
    """A plan in `terraform show -json`'s format: resource_changes and the prior state."""
    return {"resource_changes": [{"address": a, "change": {"actions": act}} for a, act in changes.items()],
            "prior_state": {"values": {"root_module": {"resources": [], "child_modules": [
                {"address": "module.ecs", "resources": [{"address": a, "values": v} for a, v in prior.items()]}]}}}}


def td(name: str) -> str:
    return f'module.ecs.aws_ecs_task_definition.this["{name}"]'


def svc(name: str) -> str:
    return f'module.ecs.aws_ecs_service.rolled["{name}"]'


def test_plan_says_which_replicas_would_roll():
    arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/obskit-prod-{}:{}"
    prior = {}
    for n in REPLICAS:
        prior[td(n)] = {"arn": arn.format(n, 4)}
        prior[svc(n)] = {"task_definition": arn.format(n, 4)}
    prior[svc("mimir-3")] = {"task_definition": arn.format("mimir-3", 3)}  # an earlier roll stopped before it
    changes = {td("mimir-1"): ["delete", "create"], td("mimir-2"): ["delete", "create"], svc("mimir-1"): ["no-op"]}
    assert planned_rolls(_plan(changes, prior), REPLICAS) == [
        ("mimir-1", "new task definition"), ("mimir-2", "new task definition"),
        ("mimir-3", "runs obskit-prod-mimir-3:3, not yet rolled to obskit-prod-mimir-3:4")]
    # Nothing changed and every replica on its definition: nothing rolls.
    prior[svc("mimir-3")] = {"task_definition": arn.format("mimir-3", 4)}
    assert planned_rolls(_plan({td(n): ["no-op"] for n in REPLICAS}, prior), REPLICAS) == []
    # The first apply creates the services on their task definitions: nothing to roll.
    first = {a: ["create"] for n in REPLICAS for a in (td(n), svc(n))}
    assert planned_rolls(_plan(first, {}), REPLICAS) == []


# ---------------------------------------------------------------------------------- HCL


def _resources(path) -> dict[tuple[str, str], dict]:
    doc = hcl2.load(path.open())
    return {(t.strip('"'), n.strip('"')): body for block in doc.get("resource", []) for t, named in block.items()
            for n, body in named.items()}


def test_terraform_leaves_only_the_rolled_services_task_definition_to_promote():
    """Only aws_ecs_service.rolled ignores task_definition; it is created on the module's own
    task definition (so the first apply starts it complete) and waits like the others."""
    res = _resources(ECS_TF / "main.tf")
    services = {n: b for (t, n), b in res.items() if t == "aws_ecs_service"}
    assert set(services) == {"this", "scaled", "rolled", "needs_outputs"}
    ignored = {n: [x for lc in b.get("lifecycle", []) for x in lc.get("ignore_changes", [])] for n, b in services.items()}
    assert ignored == {"this": [], "scaled": ["desired_count"], "rolled": ["task_definition"], "needs_outputs": []}
    rolled = services["rolled"]
    assert rolled["for_each"] == "${local.rolled}"
    assert rolled["task_definition"] == "${aws_ecs_task_definition.this[each.key].arn}"
    assert rolled["depends_on"] == services["this"]["depends_on"]
    # No target group: the ALB's listener-before-service order (test_aws_constraints) is not needed.
    assert "load_balancer" not in rolled and "dynamic" not in rolled
    outputs = hcl2.load((ECS_TF / "outputs.tf").open())["output"]
    out = next(o['"rolled_task_definitions"'] for o in outputs if '"rolled_task_definitions"' in o)
    assert out["value"] == "${{for k, s in aws_ecs_service.rolled : k => aws_ecs_task_definition.this[k].arn}}"
    root = hcl2.load((REPO / "terraform" / "outputs.tf").open())["output"]
    assert any(o.get('"rolled_task_definitions"', {}).get("value") == "${module.ecs.rolled_task_definitions}" for o in root)


def test_every_replica_count_the_spec_allows_is_moved_not_replaced():
    """Services deployed before this change are aws_ecs_service.this["mimir-N"]: a moved block
    per replica the spec can have keeps them (a replaced service would stop its ingester)."""
    from obskit.spec.model import Mimir

    most = next(m.le for m in Mimir.model_fields["replicas"].metadata if hasattr(m, "le"))
    doc = hcl2.load((ECS_TF / "main.tf").open())
    moved = {(m["from"], m["to"]) for m in doc.get("moved", [])}
    for i in range(1, most + 1):
        assert (f'${{aws_ecs_service.this["mimir-{i}"]}}', f'${{aws_ecs_service.rolled["mimir-{i}"]}}') in moved, i


@pytest.fixture(scope="module")
def golden_services():
    return json.loads((REPO / "tests" / "golden" / "aws" / "prod.tfvars.json").read_text())["services"]


def test_the_module_splits_the_services_so_that_mimir_alone_is_rolled(golden_services, tmp_path):
    """terraform console on the module's locals with the rendered services: every service is
    in exactly one of fixed, scaled, rolled and needs_outputs, and rolled is Mimir's replicas."""
    require_tool("terraform", "install terraform to run this test")
    for name in ("locals.tf", "variables.tf"):
        shutil.copy(ECS_TF / name, tmp_path / name)
    required = {"name": "x", "region": REGION, "subnet_ids": [], "security_group_ids": {}, "service_registry_arns": {},
                "ssm_parameter_arn_prefix": "arn:aws:ssm:eu-west-1:1:parameter", "ssm_prefix": "/obskit/x/prod",
                "outputs": {"grafana_database_endpoint": "db"}, "bucket_arns": {}, "storage_kms_key_arn": "k",
                "log_group_prefix": "/obskit/x/prod", "services": golden_services}
    (tmp_path / "in.tfvars.json").write_text(json.dumps(required))
    proc = subprocess.run(["terraform", "console", "-var-file=in.tfvars.json"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120,
                          input="jsonencode({for k in [\"fixed\", \"scaled\", \"rolled\", \"needs_outputs\"] : k => "
                                "keys({fixed = local.fixed, scaled = local.scaled, rolled = local.rolled, "
                                "needs_outputs = local.needs_outputs}[k])})\n",
                          env={"PATH": "/usr/bin:/bin:/usr/local/bin", "TF_CLI_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    split = json.loads(json.loads(proc.stdout))
    assert split["rolled"] == REPLICAS
    everything = [n for names in split.values() for n in names]
    assert sorted(everything) == sorted(golden_services) and len(everything) == len(set(everything)), split


def secret_readers(services: dict, names: list[str]) -> list[str]:
    return [f"{n}/{c['name']}" for n in names for c in json.loads(services[n]["container_definitions"]) if c.get("secrets")]


def test_mimir_reads_no_secret(golden_services):
    """A rotated secret redeploys its readers through Terraform's triggers, all at once; Mimir
    reads none (S3 through its task role), so nothing but the roll redeploys its replicas.
    Should it ever read one, rotation must go through the roll too."""
    assert secret_readers(golden_services, REPLICAS) == []
    # The check catches one (in a copy).
    services = json.loads(json.dumps(golden_services))
    defs = json.loads(services["mimir-2"]["container_definitions"])
    defs[0]["secrets"] = [{"name": "X", "valueFrom": "__OBSKIT_SSM_ARN__/obskit/obskit/prod/x"}]
    services["mimir-2"]["container_definitions"] = json.dumps(defs)
    assert secret_readers(services, REPLICAS) == [f"mimir-2/{defs[0]['name']}"]
