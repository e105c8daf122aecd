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

import errno
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
from obskit.errors import OutputError
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
        comps = components(spec.grafana.sub_path)
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
            "stop_grace": {name: c.stop_timeout for name, c in comps.items()},
            "image_env": {name: dict(c.image_env) for name, c in comps.items()},
            "scratch_dirs": {name: c.scratch_dirs for name, c in comps.items()},
            "entrypoints": {name: list(c.entrypoint) for name, c in comps.items()},
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


# A test hook, not an interface: with OBSKIT_TEST_PAUSE_AT=<step>, write_environment prints
# "obskit-test-paused-at <step>" on stderr and stops itself (SIGSTOP) at that step, so a
# test can SIGKILL it exactly there. Steps, in order: writing (half the files written),
# written (the new folder complete), moved-old (the old render moved aside, the new one
# not yet in place), swapped (the new render in place, the old one not yet deleted).
PAUSE_ENV = "OBSKIT_TEST_PAUSE_AT"

_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "a file is larger than the file system allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file is in the way",
    errno.EXDEV: "the folders are on different file systems",
    errno.ENAMETOOLONG: "the path is too long",
    errno.ELOOP: "the path has a symbolic-link loop",
    errno.ENOENT: "a part of the path does not exist",
    errno.EISDIR: "a folder is in the way",
}


def _cause(exc: OSError) -> str:
    return _CAUSES.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()


def _pause(step: str) -> None:
    if os.environ.get(PAUSE_ENV) == step:
        import signal
        import sys

        sys.stderr.write(f"obskit-test-paused-at {step}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSTOP)


def is_rendered_folder(path: Path) -> bool:
    """True when ``path`` holds a render of obskit's: a stamp listing its files."""
    stamp = read_stamp(path)
    return isinstance(stamp, dict) and isinstance(stamp.get("files"), dict) and "obskit_version" in stamp


def _foreign_entries(path: Path, stamp: dict) -> list[str]:
    """What a rendered folder holds beyond what its stamp lists (someone else's files)."""
    listed = set(stamp.get("files", {})) | {"stamp.json"}
    dirs = {str(Path(rel).parent) for rel in listed} | {
        p.as_posix() for rel in listed for p in Path(rel).parents
    }
    foreign = []
    for root, subdirs, names in os.walk(path):
        rel_root = Path(root).relative_to(path)
        for name in names:
            rel = (rel_root / name).as_posix()
            if rel not in listed:
                foreign.append(rel)
        for name in list(subdirs):
            rel = (rel_root / name).as_posix()
            if rel not in dirs or os.path.islink(os.path.join(root, name)):
                foreign.append(rel + ("" if os.path.islink(os.path.join(root, name)) else "/"))
                subdirs.remove(name)
    return sorted(foreign)


def _check_replaceable(dest: Path) -> None:
    """Refuse to replace anything but a folder obskit rendered, or an empty one."""
    if not os.path.lexists(dest):
        return
    if not dest.is_dir():
        raise OutputError(f"cannot render into {dest}: it is a file, not a folder", path=dest,
                          hint="give --out a folder that does not exist yet, is empty, or holds an earlier render")
    stamp = read_stamp(dest)
    if not is_rendered_folder(dest):
        try:
            empty = not any(os.scandir(dest))
        except OSError as exc:
            raise OutputError(f"cannot read the output folder {dest}: {_cause(exc)}", path=dest) from None
        if empty:
            return
        raise OutputError(
            f"refusing to render into {dest}: it holds files that obskit did not render "
            "(no stamp.json of obskit's), and rendering replaces the whole folder",
            path=dest,
            hint="give --out a new or empty folder (obskit only replaces a folder it rendered itself)",
        )
    foreign = _foreign_entries(dest, stamp)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(
            f"refusing to render into {dest}: it holds files its render did not write ({shown}), "
            "and rendering replaces the whole folder",
            path=dest,
            hint="move those files elsewhere first; the rendered folder is obskit's alone",
        )


def _resolve_dest(dest: Path) -> Path:
    """The absolute output folder; never the current folder or one that holds it."""
    try:
        real = Path(os.path.realpath(dest))
    except OSError as exc:  # pragma: no cover - realpath rarely raises
        raise OutputError(f"cannot use {dest} as the output folder: {_cause(exc)}", path=dest) from None
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        cwd = None
    if real.parent == real or (cwd is not None and (cwd == real or real in cwd.parents)):
        raise OutputError(
            f"refusing to render into {dest}: it is the current folder or holds it, and rendering "
            "replaces the whole output folder",
            path=dest,
            hint="give --out a folder of its own, e.g. --out rendered/local",
        )
    return real


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class _Lock:
    """An exclusive lock on the output folder's parent (flock on the folder itself), held
    for a whole write so two renders never swap the same folder at once and a recovery
    never removes a live render's temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fd: int | None = None

    def __enter__(self) -> "_Lock":
        import fcntl

        self.fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock


def _leftovers(dest: Path) -> tuple[list[Path], list[Path]]:
    """Temporary (``.NAME.render-*``) and backup (``.NAME.old-*``) folders of earlier writes."""
    temps, olds = [], []
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return [], []
    for entry in entries:
        if entry.name.startswith(f".{dest.name}.render-"):
            temps.append(Path(entry.path))
        elif entry.name.startswith(f".{dest.name}.old-"):
            olds.append(Path(entry.path))
    return temps, olds


def _recover_locked(dest: Path) -> Path | None:
    """Undo what an interrupted write left (the lock is held). When the output folder is
    missing and a complete backup of it exists, the backup is put back; every other
    temporary or backup folder is removed. Returns the restored backup, if any."""
    temps, olds = _leftovers(dest)
    restored = None
    if not os.path.lexists(dest):
        for old in sorted(olds, key=lambda p: p.stat().st_mtime_ns if p.exists() else 0, reverse=True):
            if is_rendered_folder(old):
                os.replace(old, dest)
                restored = old
                break
    for path in temps + [o for o in olds if o != restored]:
        _rmtree(path)
    return restored


def recover(dest: Path) -> Path | None:
    """Restore or clean up after a write of ``dest`` that was interrupted (killed between
    its two renames, or failed half-way). Safe to call any time; cheap when nothing is left."""
    dest = Path(os.path.abspath(dest))
    temps, olds = _leftovers(dest)
    if not temps and not olds:
        return None
    try:
        with _Lock(dest.parent):
            return _recover_locked(dest)
    except OSError:
        return None


def write_environment(files: Files, dest: Path) -> WriteResult:
    """Write a rendered environment: into a temporary sibling folder, then swapped in.

    ``dest`` is replaced whole, so it may only be a folder obskit rendered (its stamp lists
    every file in it) or an empty one; anything else raises :class:`OutputError` and
    nothing is touched. A swap that fails half-way is rolled back; one that was killed is
    restored (or its leftovers removed) by the next write, or by :func:`recover`.
    """
    dest = _resolve_dest(Path(dest))
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot create the output folder {dest}: a file is in the way on that path", path=dest,
                          hint="give --out a path whose parent folders are folders") from None
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {dest}: {_cause(exc)}", path=dest) from None
    if not dest.parent.is_dir():
        raise OutputError(f"cannot create the output folder {dest}: a part of the path is not a folder", path=dest)
    try:
        lock = _Lock(dest.parent).__enter__()
    except OSError as exc:
        raise OutputError(f"cannot write into {dest.parent}: {_cause(exc)}", path=dest.parent) from None
    try:
        _recover_locked(dest)
        _check_replaceable(dest)
        old_stamp = read_stamp(dest) or {}
        _swap_in(files, dest)
    finally:
        lock.__exit__()
    old_files = old_stamp.get("files", {})
    new_hashes = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items() if rel != "stamp.json"}
    changed = sorted(
        rel for rel in set(new_hashes) | set(old_files) if new_hashes.get(rel) != old_files.get(rel)
    )
    return WriteResult(dest, sorted(files), changed)


def _swap_in(files: Files, dest: Path) -> None:
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.render-", dir=dest.parent))
    except OSError as exc:
        raise OutputError(f"cannot write into {dest.parent}: {_cause(exc)}", path=dest.parent) from None
    backup: Path | None = None
    moved = False
    try:
        half = len(files) // 2
        for i, (rel, data) in enumerate(files.items()):
            if i == half:
                _pause("writing")
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.chmod(target, 0o755 if rel.endswith(EXECUTABLE_SUFFIXES) else 0o644)
        os.chmod(tmp, 0o755)
        _pause("written")
        if os.path.lexists(dest):
            backup = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, backup)
            moved = True
            _pause("moved-old")
        os.replace(tmp, dest)
        moved = False
        _pause("swapped")
    except BaseException as exc:
        if moved and backup is not None and not os.path.lexists(dest):
            try:
                os.replace(backup, dest)  # roll back: the previous render is where it was
                backup = None
            except OSError:
                pass  # the next write (or recover()) restores it from the backup
        _rmtree(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write the rendered environment into {dest}: {_cause(exc)}"
                              + ("; the previous render is unchanged" if backup is None or not moved else ""),
                              path=dest, hint=_hint_for(exc)) from None
        raise
    if backup is not None:
        _rmtree(backup)


def _hint_for(exc: OSError) -> str | None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "free some space (a rendered environment takes about a megabyte), or give --out another disk"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "give --out a folder you can write to"
    return None


def default_output(env_name: str, base: Path | None = None) -> Path:
    return (base or Path.cwd()) / STATE_DIR / "env" / env_name
