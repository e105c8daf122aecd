"""The terraform chokepoint: every terraform command goes through here.

Errors are TerraformError with the command, exit code and output. Long commands stream
their lines to a callback (for progress) and still keep the whole output for the error.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Callable, Mapping, Sequence

from obskit.errors import TerraformError, ToolNotFound
from obskit.tools.run import INSTALL_HINTS, run, which

MIN_VERSION = (1, 11, 0)  # write-only arguments (passwords kept out of state) need 1.11


def version() -> tuple[int, int, int]:
    result = run(["terraform", "version", "-json"], error=TerraformError, timeout=60)
    text = json.loads(result.stdout)["terraform_version"]
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    if not m:
        raise TerraformError("terraform", ["terraform", "version", "-json"], 0, f"unreadable version {text!r}")
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


def terraform(args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None,
              on_line: Callable[[str], None] | None = None, timeout: float = 3600) -> str:
    """Run ``terraform ARGS`` in ``cwd`` (always -no-color, never interactive)."""
    command = ["terraform", *args]
    if on_line is None:
        return run(command, error=TerraformError, cwd=cwd, env={**(env or {}), "TF_IN_AUTOMATION": "1"},
                   timeout=timeout).stdout
    exe = which("terraform")
    if exe is None:
        raise ToolNotFound("terraform", hint=INSTALL_HINTS["terraform"])
    proc = subprocess.Popen([exe, *args], cwd=cwd, env={**os.environ, **(env or {}), "TF_IN_AUTOMATION": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        on_line(line.rstrip("\n"))
    code = proc.wait(timeout=timeout)
    output = "".join(lines)
    if code != 0:
        raise TerraformError("terraform", command, code, output)
    return output


def fmt_check(folder: Path) -> str:
    """``terraform fmt -check -recursive``: lists the files that are not formatted."""
    return terraform(["fmt", "-check", "-recursive", "-diff"], cwd=folder)
