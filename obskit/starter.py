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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}",
                         hint="pick a folder you may write to with --path, or fix its permissions") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(starter_text())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}",
                         hint="pick a folder you may write to with --path, or fix its permissions") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def ignore_state(folder: Path) -> bool:
    """In a git work tree, make sure .obskit/ (rendered output, secrets) is ignored.

    Returns True when it appended the entry to .gitignore.
    """
    if not (folder / ".git").exists():
        return False
    gitignore = folder / ".gitignore"
    lines = gitignore.read_text().splitlines() if gitignore.exists() else []
    if any(line.strip() in (".obskit", ".obskit/", "/.obskit", "/.obskit/") for line in lines):
        return False
    with gitignore.open("a") as fh:
        if lines and lines[-1] != "":
            fh.write("\n")
        fh.write("# obskit: rendered environments and generated secrets\n.obskit/\n")
    return True
