"""One image per component: FROM the pinned upstream image, plus the rendered config files
(the very bytes `obskit parity` compares), tagged with a hash of its content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from obskit.promote.components import Component, components
from obskit.spec.model import Spec


@dataclass(frozen=True)
class ImagePlan:
    component: str
    base: str  # the pinned upstream image, from images: in the spec
    dockerfile: str
    files: dict[str, bytes]  # build context: path -> bytes
    content_hash: str
    repository: str  # ECR repository name

    @property
    def tag(self) -> str:
        return f"cfg-{self.content_hash}"

    def uri(self, registry: str) -> str:
        return f"{registry}/{self.repository}:{self.tag}"


def repository_name(spec: Spec, env_name: str, component: str) -> str:
    return f"{spec.project}-{env_name}/{component}"


def _dockerfile(c: Component, base: str, config_hash: str) -> str:
    lines = [
        f"# obskit {c.name}: the pinned upstream image plus the rendered configs/{c.name}/ files,",
        "# byte-identical to what every environment renders. Generated; do not edit.",
        f"FROM {base}",
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


def write_context(plan: ImagePlan, folder: Path) -> Path:
    """The build context on disk: Dockerfile and the config files at their configs/ paths."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(plan.dockerfile)
    for rel, data in plan.files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder
