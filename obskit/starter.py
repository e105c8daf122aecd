"""`obskit init`: write the commented starter spec."""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

from obskit.errors import UsageError


def starter_text() -> str:
    return resources.files("obskit").joinpath("starter.yaml").read_text(encoding="utf-8")


def write_starter(path: Path, *, force: bool = False) -> Path:
    if path.exists() and not force:
        raise UsageError(
            f"{path} already exists; nothing was written",
            hint="pass --force to overwrite it, or --path to write elsewhere",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(starter_text())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
