"""The obskit error hierarchy.

Every error a user can cause or meet derives from :class:`ObskitError`. The CLI prints
``str(error)`` (one clear message plus a hint) and exits with ``error.exit_code``; a
traceback is shown only with ``--debug``.

Exit codes (the README's table is the same):

====  =====================================================================================
0     success
1     a generic failure: a service failed its healthcheck, a check or verify case failed,
      or an unexpected error (the message asks for a report; ``--debug`` shows the traceback)
2     bad input: the spec (file, environment variable or ``--set``), a command-line
      argument, an output folder obskit may not write, or this machine's setup (AWS
      profile, credentials, region; a host port already taken)
3     no Docker engine answers, or programs the process runtime needs are missing
4     an external tool or service failed or refused (nginx, promtool, terraform, docker,
      an AWS API)
5     a load run could not reach or count through the gateway (``obskit load``)
6     configs drift between two environments (``obskit parity``)
7     a promote plan would lose data and ``--allow-data-loss`` was not given
130   interrupted (Ctrl-C or SIGTERM)
====  =====================================================================================

With ``--json`` a failing command also prints one JSON object on stdout:
``{"ok": false, "error": ..., "hint": ..., "exit_code": ...}``; the text goes to stderr.
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


class OutputError(ObskitError):
    """obskit may not, or cannot, write an output folder: it is not obskit's, is not a
    folder, or the file system refused (read-only, full, ...). Nothing was replaced."""

    exit_code = 2

    def __init__(self, message: str, *, path: object = None, hint: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        super().__init__(message, hint=hint)


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

    def __init__(self, tool: str, *, hint: str | None = None, message: str | None = None) -> None:
        self.tool = tool
        super().__init__(message or f"'{tool}' was not found on PATH", hint=hint)


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


class DockerError(ToolError):
    """The Docker engine (its CLI or its API) refused or failed a call
    (:mod:`obskit.tools.docker`)."""


class TerraformError(ToolError):
    pass


class PromtoolError(ToolError):
    pass
