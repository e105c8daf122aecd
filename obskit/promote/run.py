"""The promote flow.

1. Preflight (every check; any failure stops before anything changes).
2. Render the environment (.obskit/env/<env>/, which holds the images' Dockerfiles and is
   their build context), then the Terraform inputs: terraform.tfvars.json (from the spec
   and the binding table) and backend.hcl (one state per environment, S3 locking), beside
   a copy of obskit's terraform/ tree in .obskit/promote/<env>/.
3. Secrets into SSM (SecureString): generated ones, and env: references read now.
4. --apply: create the ECR repositories, build and push one image per component.
5. terraform init, plan -out; the saved plan is checked (no stateful resource destroyed or
   replaced without --allow-data-loss), then exactly that plan is applied.
6. After apply: verify against the public endpoint; print the URLs.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from obskit import bindings
from obskit.errors import ObskitError
from obskit.promote import cloud, ecs, safety
from obskit.promote import images
from obskit.promote.images import image_plans
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


@dataclass
class PromoteResult:
    env: str
    mode: str
    checks: list[dict] = field(default_factory=list)
    secrets_written: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)
    plan: dict[str, int] = field(default_factory=dict)
    data_losses: list[str] = field(default_factory=list)
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


def copy_terraform(dest: Path) -> None:
    """obskit's terraform/ tree into the work dir, keeping .terraform (providers, modules)."""
    from obskit.resources import data_root

    src = data_root() / "terraform"
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if ".terraform" in rel.parts or path.is_dir():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def prepare(resolved, env_name: str, workdir: Workdir, *, account: str) -> tuple[dict, dict]:
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
    tfvars = ecs.tfvars(spec, env_name, plans, hashes, registry)
    workdir.root.mkdir(parents=True, exist_ok=True)
    copy_terraform(workdir.terraform)
    workdir.tfvars.write_text(json.dumps(tfvars, indent=2, sort_keys=True) + "\n")
    workdir.backend.write_text(backend_hcl(spec, env_name, env))
    return tfvars, plans


def secrets_for_ssm(resolved, env_name: str, store_dir: Path, environ=None) -> dict[str, str]:
    """SSM parameter name -> value for every secret the environment's services use that
    obskit provides (generated, or env: references); ssm: references are the user's own."""
    from obskit.secrets import SecretStore, resolve

    spec = resolved.spec
    values, _created = SecretStore(store_dir, env_name).ensure(spec)
    out = {}
    for secret in bindings.secret_catalogue(spec, env_name).values():
        if secret.ref and secret.ref.startswith("ssm:"):
            continue
        out[ecs.ssm_parameter(spec, env_name, secret)] = resolve(secret, values, environ)
    out[ecs.ssm_parameter(spec, env_name, bindings.POSTGRES_PASSWORD)] = resolve(bindings.POSTGRES_PASSWORD, values)
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
    tfvars, plans = prepare(resolved, env_name, workdir, account=account)
    result.images = tfvars["images"]
    say = on_line or (lambda line: None)

    cloud.ensure_state_bucket(env.region, state_bucket(env))
    result.secrets_written = cloud.put_secrets(env.region, secrets_for_ssm(resolved, env_name, project.state_dir, environ))
    common = ["-input=false", f"-var-file={workdir.tfvars}"]
    tf.terraform(["init", "-input=false", f"-backend-config={workdir.backend}"], cwd=workdir.terraform, on_line=say)

    if mode == "apply":
        say("creating the ECR repositories")
        tf.terraform(["apply", "-auto-approve", "-target=module.ecr", *common], cwd=workdir.terraform, on_line=say)
        registry, user, password = cloud.ecr_credentials(env.region)
        docker.login(registry, user, password)
        for plan in plans.values():
            uri = plan.uri(registry)
            # The tag is a content hash in an immutable repository: if it is there, it is
            # this image, and pushing it again would be refused.
            if cloud.image_exists(env.region, plan.repository, plan.tag):
                say(f"{uri} is already in ECR: not rebuilt")
                continue
            # The environment folder is the build context, as for compose's image delivery;
            # FROM the pinned image by digest: the exact upstream bytes. ECS runs X86_64.
            images.build(plan, project.env_dir(env_name), uri, platform="linux/amd64", on_line=say)
            say(f"pushing {uri}")
            docker.push(uri)

    args = ["plan", "-out", str(workdir.plan), *common] + (["-destroy"] if mode == "destroy" else [])
    tf.terraform(args, cwd=workdir.terraform, on_line=say)
    plan_json = json.loads(tf.terraform(["show", "-json", str(workdir.plan)], cwd=workdir.terraform))
    result.plan = safety.summarize(plan_json)
    losses = safety.check(plan_json, allow_data_loss=allow_data_loss)
    result.data_losses = [loss.what for loss in losses]
    if mode in ("apply", "destroy"):
        tf.terraform(["apply", "-input=false", str(workdir.plan)], cwd=workdir.terraform, on_line=say)
        result.applied = True
    if mode == "apply":
        result.outputs = {k: v.get("value") for k, v in
                          json.loads(tf.terraform(["output", "-json"], cwd=workdir.terraform)).items()}
        result.verify = _verify(project, env_name)
    return result


def _verify(project, env_name: str) -> list[dict]:
    from obskit.stack import endpoints
    from obskit.verify import cases_for, run_verify

    try:
        outcomes = run_verify(endpoints(project, env_name), cases_for(project.spec), deadline_seconds=300)
    except ObskitError as exc:
        return [{"name": "verify", "ok": False, "detail": exc.message}]
    return [o.to_json() for o in outcomes]
