"""One image per component: the pinned upstream image plus the rendered config files
(the very bytes `obskit parity` compares), tagged with a hash of its content.

The Dockerfiles are part of every rendered environment (``images/<component>/Dockerfile``),
and they are identical in every environment. Their build context is the environment folder
itself, so compose (``config_delivery: image``) and ``obskit promote`` build the same
Dockerfile over the same bytes; both pass ``BASE`` pinned by registry digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from obskit.components import Component, components
from obskit.spec.model import Spec

# What docker may read from an environment folder when it builds: the configs only.
DOCKERIGNORE = b"# obskit: images are built from the rendered configs/ only\n*\n!configs/\n"


@dataclass(frozen=True)
class ImagePlan:
    component: str
    base: str  # the pinned upstream image, from images: in the spec
    dockerfile: str
    files: dict[str, bytes]  # what the image adds: configs/<component>/... -> bytes
    content_hash: str
    repository: str  # ECR repository name

    @property
    def tag(self) -> str:
        return f"cfg-{self.content_hash}"

    @property
    def dockerfile_path(self) -> str:
        """Where the Dockerfile sits in a rendered environment (the build context)."""
        return dockerfile_path(self.component)

    def uri(self, registry: str) -> str:
        return f"{registry}/{self.repository}:{self.tag}"


def dockerfile_path(component: str) -> str:
    return f"images/{component}/Dockerfile"


def repository_name(spec: Spec, env_name: str, component: str) -> str:
    return f"{spec.project}-{env_name}/{component}"


def local_image(spec: Spec, plan: ImagePlan) -> str:
    """The tag compose uses for a component image built on this machine."""
    return f"{spec.project}/{plan.component}:{plan.tag}"


def _dockerfile(c: Component, base: str, config_hash: str) -> str:
    lines = [
        f"# obskit {c.name}: the pinned upstream image plus the rendered configs/{c.name}/ files,",
        "# byte-identical in every environment. Generated; do not edit.",
        "# Build context: the environment folder. obskit passes BASE pinned by digest.",
        f"ARG BASE={base}",
        "FROM ${BASE}",
    ]
    for rel, dest in c.copies:
        mode = "--chmod=0755 " if rel.endswith(".sh") else ""
        lines.append(f"COPY {mode}configs/{c.name}/{rel} {dest}")
    lines.append(f'LABEL org.opencontainers.image.title="obskit-{c.name}" io.obskit.config-hash="{config_hash}"')
    return "\n".join(lines) + "\n"


def image_plans(spec: Spec, env_name: str, files: Mapping[str, bytes], config_hashes: Mapping[str, str]) -> dict[str, ImagePlan]:
    plans = {}
    for name, c in components(spec.grafana.sub_path).items():
        base = getattr(spec.images, c.image_key)
        prefix = f"configs/{name}/"
        context = {}
        for rel, _dest in c.copies:
            key = prefix + rel
            if key in files:
                context[key] = files[key]
            else:  # a folder
                for path, data in files.items():
                    if path.startswith(key + "/"):
                        context[path] = data
        dockerfile = _dockerfile(c, base, config_hashes[name])
        h = hashlib.sha256(dockerfile.encode())
        for path in sorted(context):
            h.update(path.encode() + b"\0" + context[path] + b"\0")
        plans[name] = ImagePlan(name, base, dockerfile, dict(sorted(context.items())), h.hexdigest()[:16],
                                repository_name(spec, env_name, name))
    return plans


def build_files(plans: Mapping[str, ImagePlan]) -> dict[str, bytes]:
    """The Dockerfiles (and the .dockerignore) a rendered environment carries."""
    out = {".dockerignore": DOCKERIGNORE}
    for plan in plans.values():
        out[plan.dockerfile_path] = plan.dockerfile.encode()
    return out


def copies(dockerfile: str) -> list[tuple[str, str]]:
    """(source in the build context, destination in the image) of every COPY line."""
    out = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            words = [w for w in line.split()[1:] if not w.startswith("--")]
            out.append((words[0], words[1]))
    return out


def build(plan: ImagePlan, env_dir: Path, tag: str, *, platform: str | None, on_line=None) -> str:
    """Build ``plan`` from a rendered environment folder as ``tag``, FROM its base pinned
    by digest (through the docker chokepoint). Returns the pinned base. ``platform`` None
    builds for this machine."""
    from obskit.tools import docker

    base = docker.pinned(plan.base)
    if on_line:
        on_line(f"building {tag} (FROM {base})")
    docker.build(Path(env_dir), tag, file=Path(env_dir) / plan.dockerfile_path, build_args={"BASE": base},
                 labels={"io.obskit.base": base}, platform=platform)
    return base
