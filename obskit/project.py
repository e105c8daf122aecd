"""Where a project's state lives: ``.obskit/`` beside the spec file (or the current
folder when there is none). It holds rendered environments (``env/<name>/``) and the
generated secrets (``secrets/<name>.json``); keep it out of version control."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from obskit.render import STATE_DIR
from obskit.spec.load import ResolvedSpec


@dataclass(frozen=True)
class Project:
    resolved: ResolvedSpec
    root: Path  # the folder holding .obskit/

    @classmethod
    def of(cls, resolved: ResolvedSpec, root: Path | None = None) -> "Project":
        if root is None:
            root = resolved.path.resolve().parent if resolved.path else Path.cwd()
        return cls(resolved, root)

    @property
    def spec(self):
        return self.resolved.spec

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def env_dir(self, env_name: str) -> Path:
        """The rendered environment's folder. A render that was killed between its two
        renames left it missing with its previous content beside it: that is put back here,
        so every command that reads the folder finds it."""
        path = self.state_dir / "env" / env_name
        if not path.exists():
            from obskit.render import recover

            recover(path)
        return path

    def compose_file(self, env_name: str) -> Path:
        return self.env_dir(env_name) / "compose" / "docker-compose.yaml"

    def project_name(self, env_name: str) -> str:
        return f"{self.spec.project}-{env_name}"
