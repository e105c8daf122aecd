"""The obskit error hierarchy.

Every error a user can cause or meet derives from :class:`ObskitError`. The CLI prints
``str(error)`` (one clear message plus a hint) and exits with ``error.exit_code``; a
traceback is shown only with ``--debug``.

Exit codes: 1 generic failure, 2 bad input (spec, arguments), 3 Docker engine missing,
4 an external tool failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


class ObskitError(Exception):
    """Base class for every error obskit raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class SpecError(ObskitError):
    """The spec (file, environment variable or --set) is invalid.

    ``source`` names where the bad value came from (a file with its line, an environment
    variable, or a --set argument); ``key`` is the dotted key path inside the spec.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.source = source
        self.key = key
        prefix = ""
        if source:
            prefix += f"{source}: "
        if key:
            prefix += f"{key}: "
        super().__init__(prefix + message, hint=hint)
        self.detail = message


class SpecErrors(SpecError):
    """Several spec problems found in one pass; each is listed on its own line."""

    def __init__(self, errors: Sequence[SpecError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        lines = [str(e) for e in self.errors]
        ObskitError.__init__(self, "\n".join(lines))
        self.source, self.key, self.detail = first.source, first.key, first.detail
        self.hint = first.hint

    def __str__(self) -> str:
        return self.message


class UsageError(ObskitError):
    """Bad command-line usage that click itself cannot detect."""

    exit_code = 2


class EnvironmentNotFound(SpecError):
    """The requested environment is not declared in the spec."""


class DockerUnavailable(ObskitError):
    """No Docker engine answers. ``command`` is the docker command that found out."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None, command: Sequence[str] = ()) -> None:
        super().__init__(message, hint=hint)
        self.command = list(command)


@dataclass
class ToolResult:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str


class ToolNotFound(ObskitError):
    """An external program obskit needs is not installed."""

    exit_code = 4

    def __init__(self, tool: str, *, hint: str | None = None) -> None:
        self.tool = tool
        super().__init__(f"'{tool}' was not found on PATH", hint=hint)


class ToolError(ObskitError):
    """An external tool (docker, terraform, nginx, promtool, ...) failed.

    Carries the exact command, its exit code and its combined output.
    """

    exit_code = 4

    def __init__(
        self,
        tool: str,
        command: Sequence[str],
        returncode: int,
        output: str,
        *,
        hint: str | None = None,
    ) -> None:
        self.tool = tool
        self.command = list(command)
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-30:])
        msg = f"{tool} failed (exit {returncode}): {' '.join(self.command)}"
        if tail:
            msg += "\n" + "\n".join("    " + line for line in tail.splitlines())
        super().__init__(msg, hint=hint)


class NginxError(ToolError):
    pass


class ComposeError(ToolError):
    pass


class TerraformError(ToolError):
    pass


class PromtoolError(ToolError):
    pass
