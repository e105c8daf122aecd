"""The promote flow.

1. Preflight (every check; any failure stops before anything changes).
2. Secrets: SSM is their source of truth. --apply creates the missing ones (never replaces
   one); --plan and --destroy only read.
3. Render the environment (.obskit/env/<env>/, which holds the images' Dockerfiles and is
   their build context), then the Terraform inputs: terraform.tfvars.json (from the spec,
   the binding table and the secrets' SSM versions) and backend.hcl (one state per
   environment, S3 locking), beside a synced copy of obskit's terraform/ tree in
   .obskit/promote/<env>/.
4. --plan with no state bucket yet: nothing is deployed in this account; say so and stop.
5. --apply: the ECR repositories through a checked, targeted plan; then one image per
   component, built and pushed.
6. terraform init, plan -out; the saved plan is checked (no stateful resource destroyed or
   replaced without --allow-data-loss; no destroy of a protected resource), then exactly
   that plan is applied. --destroy plans the destruction of everything except the data and
   the keys that encrypt it (see DESIGN.md).
7. After apply: Mimir's replicas are rolled to their new task definitions one after another,
   each steady before the next (Terraform registers them but leaves those services alone;
   --plan says which would roll); then verify against the public endpoint; print the URLs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from obskit import bindings
from obskit.errors import ObskitError
from obskit.promote import cloud, ecs, safety
from obskit import images
from obskit.promote import secrets as ssm_secrets
from obskit.images import image_plans
from obskit.promote.preflight import require, run_checks
from obskit.render import component_hashes, render, write_environment
from obskit.tools import terraform as tf


@dataclass
class Workdir:
    root: Path  # .obskit/promote/<env>

    @property
    def terraform(self) -> Path:
        return self.root / "terraform"

    @property
    def tfvars(self) -> Path:
        return self.root / "terraform.tfvars.json"

    @property
    def backend(self) -> Path:
        return self.root / "backend.hcl"

    @property
    def plan(self) -> Path:
        return self.root / "tfplan"

    @property
    def ecr_plan(self) -> Path:
        return self.root / "ecr.tfplan"


@dataclass
class PromoteResult:
    env: str
    mode: str
    checks: list[dict] = field(default_factory=list)
    secrets_written: list[str] = field(default_factory=list)  # parameter names, never values
    secrets_to_write: list[str] = field(default_factory=list)  # what --apply would create or re-derive
    notes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # what --destroy leaves in place
    images: dict[str, str] = field(default_factory=dict)
    plan: dict[str, int] = field(default_factory=dict)
    data_losses: list[str] = field(default_factory=list)
    to_roll: list[str] = field(default_factory=list)  # Mimir replicas this plan leaves for the roll after apply
    rolled: list[str] = field(default_factory=list)  # the replicas --apply moved to a new task definition
    applied: bool = False
    outputs: dict = field(default_factory=dict)
    verify: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return self.__dict__.copy()


def state_bucket(env) -> str:
    return f"{env.bucket_prefix}tfstate"


def backend_hcl(spec, env_name: str, env) -> str:
    return (
        f'bucket       = "{state_bucket(env)}"\n'
        f'key          = "obskit/{spec.project}/{env_name}/terraform.tfstate"\n'
        f'region       = "{env.region}"\n'
        "encrypt      = true\n"
        "use_lockfile = true\n"
    )


# Kept in the work dir between runs: providers and modules, and their lock file.
_TERRAFORM_OWN = (".terraform", ".terraform.lock.hcl")


def copy_terraform(dest: Path) -> None:
    """Make ``dest`` an exact copy of obskit's terraform/ tree: new and changed files are
    written, files obskit no longer ships are deleted (a resource removed in an upgrade must
    not come back), and only terraform's own .terraform/ and lock file are kept."""
    from obskit.resources import data_root

    src = data_root() / "terraform"
    wanted = {path.relative_to(src) for path in src.rglob("*")
              if path.is_file() and not set(path.relative_to(src).parts) & set(_TERRAFORM_OWN)}
    if dest.exists():
        for path in sorted(dest.rglob("*"), reverse=True):  # children before their folders
            rel = path.relative_to(dest)
            if set(rel.parts) & set(_TERRAFORM_OWN):
                continue
            if path.is_dir():
                if not any(path.iterdir()):
                    path.rmdir()
            elif rel not in wanted:
                path.unlink()
    for rel in sorted(wanted):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = (src / rel).read_bytes()
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)


def prepare(resolved, env_name: str, workdir: Workdir, *, account: str,
            secrets_versions: dict[str, str] | None = None) -> tuple[dict, dict]:
    """Render the environment and the Terraform inputs. Returns (tfvars, image plans)."""
    from obskit.project import Project

    spec = resolved.spec
    env = resolved.environment(env_name)
    project = Project.of(resolved)
    files = render(resolved, env_name)
    write_environment(files, project.env_dir(env_name))
    hashes = component_hashes(files)
    plans = image_plans(spec, env_name, files, hashes)
    registry = f"{account}.dkr.ecr.{env.region}.amazonaws.com"
    tfvars = ecs.tfvars(spec, env_name, plans, hashes, registry, secrets_versions)
    workdir.root.mkdir(parents=True, exist_ok=True)
    copy_terraform(workdir.terraform)
    workdir.tfvars.write_text(json.dumps(tfvars, indent=2, sort_keys=True) + "\n")
    workdir.backend.write_text(backend_hcl(spec, env_name, env))
    return tfvars, plans


# What --destroy leaves in place: the buckets (Loki's and Mimir's data; a non-empty bucket
# cannot be deleted anyway) with the key that encrypts them, and the database's key, which
# encrypts its final snapshot. They stay in the state: a later --apply brings the stack
# back onto the same data.
KEPT_ON_DESTROY = ("module.storage.", "module.rds.aws_kms_key.")


def destroy_targets(state_addresses: list[str]) -> tuple[list[str], list[str]]:
    """(addresses to destroy, addresses kept) from ``terraform state list``."""
    destroy, kept = [], []
    for address in state_addresses:
        address = address.strip()
        if not address or address.startswith("data.") or ".data." in address:
            continue
        (kept if address.startswith(KEPT_ON_DESTROY) else destroy).append(address)
    return destroy, kept


def flushing_services(spec, env_name: str) -> list[str]:
    """The ECS services that flush to S3 when their tasks stop (Loki and each Mimir replica)."""
    return sorted(name for name, svc in bindings.services(spec, env_name).items() if svc.component in ("loki", "mimir"))


def rolled_services(spec, env_name: str) -> list[str]:
    """The ECS services promote rolls itself, in the order it rolls them: Mimir's replicas
    (mimir-1, mimir-2, ...). The ecs module creates them but ignores a new task definition
    (its rolled_components)."""
    services = bindings.services(spec, env_name)
    return [r for r in spec.mimir_replicas if r in services and services[r].component == "mimir"]


def _prior_resources(plan_json: dict) -> dict[str, dict]:
    """address -> values of every resource in the plan's prior (refreshed) state."""
    out: dict[str, dict] = {}
    todo = [plan_json.get("prior_state", {}).get("values", {}).get("root_module", {})]
    while todo:
        module = todo.pop()
        out |= {r["address"]: r.get("values", {}) for r in module.get("resources", [])}
        todo += module.get("child_modules", [])
    return out


def planned_rolls(plan_json: dict, replicas: list[str]) -> list[tuple[str, str]]:
    """[(replica, why)]: the replicas that --apply rolls after applying this plan, in order.
    A replica rolls when the plan registers a new task definition for it (a config or image
    change), or when its service does not run the one it has (an earlier roll that stopped);
    a service the plan creates starts on its task definition and needs no roll."""
    changes = {rc["address"]: rc.get("change", {}).get("actions", []) for rc in plan_json.get("resource_changes", [])}
    prior = _prior_resources(plan_json)
    out = []
    for name in replicas:
        definition = f'module.ecs.aws_ecs_task_definition.this["{name}"]'
        service = f'module.ecs.aws_ecs_service.rolled["{name}"]'
        if "create" in changes.get(service, []):
            continue
        if "create" in changes.get(definition, []):
            out.append((name, "new task definition"))
        elif service in prior and definition in prior and \
                prior[service].get("task_definition") != prior[definition].get("arn"):
            running = str(prior[service].get("task_definition")).rsplit("/", 1)[-1]
            out.append((name, f"runs {running}, not yet rolled to {str(prior[definition].get('arn')).rsplit('/', 1)[-1]}"))
    return out


def promote(resolved, env_name: str, *, mode: str = "plan", allow_data_loss: bool = False,
            on_line: Callable[[str], None] | None = None, environ=None) -> PromoteResult:
    from obskit.project import Project
    from obskit.tools import docker

    environ = os.environ if environ is None else environ
    result = PromoteResult(env_name, mode)
    checks = run_checks(resolved, env_name, environ=environ)
    result.checks = [c.to_json() for c in checks]
    require(checks)
    env = resolved.environment(env_name)
    project = Project.of(resolved)
    workdir = Workdir(project.state_dir / "promote" / env_name)
    account = cloud.caller_identity(env.region)["account"]
    say = on_line or (lambda line: None)
    bucket = state_bucket(env)
    deployed = cloud.bucket_exists(env.region, bucket)

    if mode == "destroy" and not deployed:
        result.notes.append(f"nothing to destroy: the state bucket {bucket} does not exist in account {account}")
        return result
    # Only --apply writes secrets: a plan or a destroy reads what SSM holds.
    secrets = ssm_secrets.sync(resolved, env_name, write=(mode == "apply"), environ=environ)
    if mode == "apply":
        result.secrets_written = secrets.written
    else:
        result.secrets_to_write = secrets.written
    versions = ssm_secrets.versions_by_service(resolved, env_name, secrets)
    tfvars, plans = prepare(resolved, env_name, workdir, account=account, secrets_versions=versions)
    result.images = ecs.images(plans, f"{account}.dkr.ecr.{env.region}.amazonaws.com")

    if not deployed:
        if mode == "plan":
            result.notes.append(
                f"nothing is deployed in account {account} yet: the state bucket {bucket} does not exist. "
                f"`obskit promote --env {env_name} --apply` creates it, the {len(secrets.written)} secret(s) "
                "listed, and the whole environment")
            return result
        say(f"creating the state bucket {bucket}")
        cloud.ensure_state_bucket(env.region, bucket)
    password = ecs.ssm_parameter(resolved.spec, env_name, bindings.POSTGRES_PASSWORD)
    if mode != "apply" and password in secrets.created:
        raise ObskitError(f"the database password {password} is not in SSM, so Terraform cannot plan the database",
                          hint=f"run `obskit promote --env {env_name} --apply`, which creates it")

    common = ["-input=false", f"-var-file={workdir.tfvars}"]
    tf.terraform(["init", "-input=false", f"-backend-config={workdir.backend}"], cwd=workdir.terraform, on_line=say)

    if mode == "apply":
        # The repositories must exist before the images are pushed, and the images before the
        # services: a targeted plan of module.ecr, checked like the main one, then applied.
        say("planning the ECR repositories")
        tf.terraform(["plan", "-out", str(workdir.ecr_plan), "-target=module.ecr", *common], cwd=workdir.terraform, on_line=say)
        ecr_plan = json.loads(tf.terraform(["show", "-json", str(workdir.ecr_plan)], cwd=workdir.terraform))
        safety.check_scoped(ecr_plan, "module.ecr.")
        tf.terraform(["apply", "-input=false", str(workdir.ecr_plan)], cwd=workdir.terraform, on_line=say)
        registry, user, password_ = cloud.ecr_credentials(env.region)
        docker.login(registry, user, password_)
        push_images(plans, project.env_dir(env_name), registry,
                    exists=lambda plan: cloud.image_exists(env.region, plan.repository, plan.tag), on_line=say)

    args = ["plan", "-out", str(workdir.plan), *common]
    if mode == "plan":
        args.append("-lock=false")  # a lock is an object written to the state bucket: a plan writes nothing
    if mode == "destroy":
        listed = tf.terraform(["state", "list"], cwd=workdir.terraform).splitlines()
        targets, kept = destroy_targets(listed)
        result.kept = kept
        if not targets:
            result.notes.append("nothing left to destroy; kept: " + (", ".join(kept) or "nothing"))
            return result
        args += ["-destroy", *(f"-target={t}" for t in targets)]
    tf.terraform(args, cwd=workdir.terraform, on_line=say)
    plan_json = json.loads(tf.terraform(["show", "-json", str(workdir.plan)], cwd=workdir.terraform))
    result.plan = safety.summarize(plan_json)
    safety.check_protection(plan_json, env_name)
    losses = safety.check(plan_json, allow_data_loss=allow_data_loss)
    result.data_losses = [loss.what for loss in losses]
    replicas = rolled_services(resolved.spec, env_name)
    if mode != "destroy":
        rolls = planned_rolls(plan_json, replicas)
        result.to_roll = [name for name, _ in rolls]
        if rolls:
            result.notes.append("after the apply, Mimir's replicas roll one at a time, each steady before the next: "
                                + ", ".join(f"{name} ({why})" for name, why in rolls))
    if mode == "destroy":
        # Loki and Mimir flush to S3 as their tasks stop: scale them to zero and wait for every
        # task to stop before Terraform deletes anything (the plan also orders every service
        # before what the flush needs, but ECS calls a deleted service gone while its tasks
        # are still stopping).
        cloud.stop_services(env.region, f"{resolved.spec.project}-{env_name}", flushing_services(resolved.spec, env_name),
                            on_line=say)
    if mode in ("apply", "destroy"):
        tf.terraform(["apply", "-input=false", str(workdir.plan)], cwd=workdir.terraform, on_line=say)
        result.applied = True
    if mode == "apply":
        result.outputs = {k: v.get("value") for k, v in
                          json.loads(tf.terraform(["output", "-json"], cwd=workdir.terraform)).items()}
        result.rolled = roll(env.region, result.outputs, replicas, on_line=say)
        result.verify = _verify(project, env_name)
    return result


def roll(region: str, outputs: dict, replicas: list[str], *, on_line: Callable[[str], None] | None = None,
         **waits) -> list[str]:
    """After the apply: each Mimir replica onto the task definition Terraform registered for
    it (the root output rolled_task_definitions), in replica order, each steady before the
    next (cloud.roll_services). Nothing is updated for a replica already on it."""
    targets = outputs.get("rolled_task_definitions") or {}
    missing = [r for r in replicas if r not in targets]
    if missing:
        raise ObskitError(f"the Terraform outputs name no task definition for {', '.join(missing)}",
                          hint="the terraform/ copy in .obskit/promote/<env>/ is not this obskit's: run promote again")
    return cloud.roll_services(region, outputs["cluster_name"], [(r, targets[r]) for r in replicas],
                               on_line=on_line, **waits)


def push_images(plans: dict, env_dir: Path, registry: str, *, exists: Callable[[object], bool],
                on_line: Callable[[str], None] | None = None) -> list[str]:
    """promote --apply's image step: build each component's image and push it to
    ``registry`` (ECR's host; a test passes a local registry), unless ``exists`` says the
    repository holds its tag already. Returns the URIs pushed."""
    from obskit.tools import docker

    say = on_line or (lambda line: None)
    pushed = []
    for plan in plans.values():
        uri = plan.uri(registry)
        # The tag is a content hash in an immutable repository: if it is there, it is
        # this image, and pushing it again would be refused.
        if exists(plan):
            say(f"{uri} is already in ECR: not rebuilt")
            continue
        # The environment folder is the build context, as for compose's image delivery;
        # FROM the pinned image by digest: the exact upstream bytes. ECS runs X86_64.
        images.build(plan, env_dir, uri, platform="linux/amd64", on_line=say)
        say(f"pushing {uri}")
        docker.push(uri)
        pushed.append(uri)
    return pushed


def _verify(project, env_name: str) -> list[dict]:
    from obskit.stack import endpoints
    from obskit.verify import cases_for, run_verify

    try:
        outcomes = run_verify(endpoints(project, env_name), cases_for(project.spec), deadline_seconds=300)
    except ObskitError as exc:
        return [{"name": "verify", "ok": False, "detail": exc.message}]
    return [o.to_json() for o in outcomes]
