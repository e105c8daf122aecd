"""Rendering: a resolved spec and an environment name in, ``{path: bytes}`` out.

Pure and deterministic: no clock, no randomness, no secrets, sorted iteration, Jinja's
StrictUndefined. Only ``*.j2`` files are templates (and ``_*.j2`` are partials, never
written); every other file (dashboards, rule text, scripts) is copied byte for byte.

Output layout of one environment (``.obskit/env/<env>/`` by default)::

    configs/<component>/...   identical in every environment (the parity rule)
    images/<component>/       a Dockerfile per component: its pinned upstream image plus
                              its configs (build context: this folder; .dockerignore)
    compose/                  the docker compose project (compose environments)
    bindings.json             this environment's variables, per service
    stamp.json                obskit version, spec hash and file hashes
    README.md                 what is where

``write_environment`` writes into a temporary sibling folder and swaps it in, so a
failed render never leaves a half-written environment behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from obskit import __version__, alerting, bindings
from obskit.components import components
from obskit import images
from obskit.resources import data_root
from obskit.spec.load import ResolvedSpec
from obskit.spec.model import ComposeEnvironment, Spec, Tenant

Files = dict[str, bytes]

EXECUTABLE_SUFFIXES = (".sh",)
STATE_DIR = ".obskit"


def _jinja_env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_root())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["envname"] = bindings.envname
    env.filters["json"] = lambda v: json.dumps(v, sort_keys=True)
    env.filters["compose_value"] = _compose_value
    return env


def _compose_value(binding: bindings.Binding) -> str:
    """A binding as a compose environment value (JSON string = YAML double-quoted)."""
    if isinstance(binding, bindings.Secret):
        text = "${%s:?secret %s is missing: run obskit up}" % (binding.env_var, binding.name)
        return json.dumps(text)
    if isinstance(binding, bindings.Output):
        raise ValueError(f"deploy-time output {binding.name} cannot be bound in compose")
    return json.dumps(binding.replace("$", "$$"))


def _tree(root: str) -> list[tuple[str, Path]]:
    base = data_root() / root
    if not base.is_dir():
        return []
    out = []
    for path in sorted(base.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".terraform" not in path.parts:
            out.append((path.relative_to(data_root()).as_posix(), path))
    return out


def _render_tree(root: str, context: Mapping, jenv) -> Files:
    files: Files = {}
    for rel, path in _tree(root):
        name = path.name
        if name.endswith(".j2"):
            if name.startswith("_"):
                continue  # a partial, included by other templates
            text = jenv.get_template(rel).render(**context)
            files[rel[: -len(".j2")]] = text.encode("utf-8")
        else:
            files[rel] = path.read_bytes()
    return files


def config_context(spec: Spec) -> dict:
    """What config templates may see: the spec's stack settings, never an environment."""
    ops = Tenant(name=spec.operators.tenant, description="operators")
    return {
        "spec": spec.model_copy(update={"environments": {}}),
        "all_tenants": bindings.tenant_names(spec),
        "operators_tenant": ops,
        "limited_tenants": [*spec.tenants, ops],
        "mimir_version": spec.images.mimir.split(":")[-1].split("@")[0],
        "ds_uid": lambda tenant, kind: alerting.datasource_uid(spec, tenant, kind),
    }


def component_hashes(files: Mapping[str, bytes]) -> dict[str, str]:
    """A content hash per component over its config files (configs/<component>/...)."""
    by_component: dict[str, hashlib._Hash] = {}
    for rel in sorted(files):
        parts = rel.split("/")
        if parts[0] != "configs" or len(parts) < 3:
            continue
        h = by_component.setdefault(parts[1], hashlib.sha256())
        h.update(rel.encode() + b"\0" + files[rel] + b"\0")
    return {k: v.hexdigest()[:16] for k, v in sorted(by_component.items())}


def render(resolved: ResolvedSpec, env_name: str) -> Files:
    """Render one environment. Raises EnvironmentNotFound for an undeclared one."""
    spec = resolved.spec
    env = resolved.environment(env_name)
    jenv = _jinja_env()

    files = _render_tree("configs", config_context(spec), jenv)
    files |= alerting.render_files(spec)
    hashes = component_hashes(files)
    plans = images.image_plans(spec, env_name, files, hashes)
    files |= images.build_files(plans)
    services = bindings.services(spec, env_name)

    if isinstance(env, ComposeEnvironment):
        context = config_context(spec) | {
            "env_name": env_name,
            "env": env,
            "services": services,
            "images": spec.images,
            "component_images": {name: images.local_image(spec, plan) for name, plan in plans.items()},
            "dockerfile": images.dockerfile_path,
            "config_hash": hashes,
            "project_name": f"{spec.project}-{env_name}",
            "store": spec.object_store,
            "stop_grace": {name: c.stop_timeout for name, c in components(spec.grafana.sub_path).items()},
        }
        files |= _render_tree("compose", context, jenv)

    files["bindings.json"] = _json(bindings.binding_table(spec, env_name))
    files["README.md"] = _readme(env_name, env.kind).encode()
    stamp = {
        "obskit_version": __version__,
        "environment": env_name,
        "kind": env.kind,
        "spec_sha256": resolved.digest(),
        "config_hashes": hashes,
        "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())},
    }
    files["stamp.json"] = _json(stamp)
    return dict(sorted(files.items()))


def _json(data) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _readme(env_name: str, kind: str) -> str:
    runs = {
        "compose": "compose/docker-compose.yaml runs it: `obskit up` (or `docker compose -f compose/docker-compose.yaml up --wait` with the secrets in the environment).",
        "process": "`obskit up --env %s` runs it as processes on 127.0.0.1 (no Docker), from a copy of configs/ in .obskit/run/%s/." % (env_name, env_name),
        "aws": "`obskit promote --env %s` deploys it to AWS with Terraform." % env_name,
    }[kind]
    return f"""# obskit environment `{env_name}` ({kind})

Generated by `obskit render`; do not edit: the next render replaces this folder whole.
Change obskit.yaml instead.

- `configs/`: the config of every component. These files are byte-identical in every
  environment (`obskit parity` proves it); each component expands environment variables.
- `bindings.json`: the variables of each service in this environment: a value, a secret
  (by name; values live in .obskit/secrets/, never here) or a deploy-time output.
- `images/<component>/Dockerfile`: the component's image, its pinned upstream image plus
  its configs; this folder is the build context (`.dockerignore` admits `configs/` only).
  Identical in every environment, like the configs.
- `stamp.json`: the obskit version, the spec hash and a hash of every file.

{runs}
"""


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class WriteResult:
    path: Path
    files: list[str]
    changed: list[str]


def read_stamp(path: Path) -> dict | None:
    try:
        return json.loads((path / "stamp.json").read_text())
    except (OSError, ValueError):
        return None


def write_environment(files: Files, dest: Path) -> WriteResult:
    """Write a rendered environment atomically: temp folder, then swap.

    ``dest`` is replaced whole; it only ever holds rendered output (data lives in docker
    volumes or cloud storage, secrets in .obskit/secrets/).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    old_stamp = read_stamp(dest) or {}
    old_files = old_stamp.get("files", {})
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.render-", dir=dest.parent))
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.chmod(target, 0o755 if rel.endswith(EXECUTABLE_SUFFIXES) else 0o644)
        os.chmod(tmp, 0o755)
        backup = None
        if dest.exists():
            backup = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, backup)
        os.replace(tmp, dest)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    new_hashes = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items() if rel != "stamp.json"}
    changed = sorted(
        rel for rel in set(new_hashes) | set(old_files) if new_hashes.get(rel) != old_files.get(rel)
    )
    return WriteResult(dest, sorted(files), changed)


def default_output(env_name: str, base: Path | None = None) -> Path:
    return (base or Path.cwd()) / STATE_DIR / "env" / env_name
