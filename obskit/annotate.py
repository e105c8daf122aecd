"""Annotations: obskit marks what it did to a stack on that stack's own dashboards.

`obskit up`, `obskit promote --apply`, `obskit secrets rotate` and `obskit load` each write
one Grafana annotation when they finish: who ran it, what it did, the environment, the obskit
version and the hash of the spec it ran from (for `load`, the scenario and its verdict).
Every obskit dashboard lists the annotations tagged ``obskit`` (one Grafana annotation query
per dashboard, the built-in ``-- Grafana --`` source filtered by that tag), so a deploy, a
rotation or a load run sits on the same time axis as the data it changed.

An annotation is a courtesy, never a condition: when Grafana does not answer (it is
skipped, still starting, or down) the command still succeeds and says the annotation was not
written, and why. Nothing here raises for an unreachable Grafana, and no credential or
response body is ever put into the message.

Credential: Grafana OSS has no role that may only write annotations (its fixed roles are an
Enterprise feature); an organization annotation needs Editor or above. The command runs as
the operator who holds the stack's secrets, so it writes with the Grafana admin credential
the secret store already gives that operator, and no new long-lived token is created.
"""

from __future__ import annotations

import getpass
import socket
import time
from dataclasses import dataclass, field
from typing import Mapping

from obskit import __version__

TAG = "obskit"  # every obskit annotation carries it; the dashboards' annotation query filters on it


@dataclass(frozen=True)
class Event:
    """Something an obskit command did to an environment's stack."""

    kind: str  # up | promote | secrets-rotate | load (also a tag: obskit-<kind>)
    environment: str
    summary: str  # one line: what happened
    details: Mapping[str, str] = field(default_factory=dict)  # e.g. scenario, verdict, secret
    spec_sha256: str | None = None  # the hash of the resolved spec the command ran from


@dataclass(frozen=True)
class Outcome:
    written: bool
    detail: str  # the annotation's id, or why it was not written

    def line(self) -> str:
        if self.written:
            return f"annotated Grafana's dashboards ({self.detail})"
        return f"annotation not written: {self.detail}"

    def to_json(self) -> dict:
        return {"written": self.written, "detail": self.detail}


def who() -> str:
    """user@host of whoever runs the command (best effort: containers may have no user name)."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry, no LOGNAME: still annotate
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def tags(event: Event) -> list[str]:
    return [TAG, f"obskit-{event.kind}", f"env:{event.environment}"]


def body(event: Event, *, now_ms: int | None = None, author: str | None = None) -> dict:
    """The JSON Grafana's POST /api/annotations takes: an organization annotation (no
    dashboard), so every dashboard whose annotation query asks for the tag shows it."""
    lines = [event.summary]
    facts = {"by": author or who(), "environment": event.environment, "obskit": __version__}
    if event.spec_sha256:
        facts["spec"] = event.spec_sha256[:12]
    facts |= dict(event.details)
    lines += [f"{k}: {v}" for k, v in facts.items()]
    return {
        "time": now_ms if now_ms is not None else int(time.time() * 1000),
        "tags": tags(event),
        "text": "\n".join(lines),
    }


def write(endpoints, event: Event, *, timeout: float = 5.0) -> Outcome:
    """Write ``event`` to the Grafana of ``endpoints`` (obskit.verify.Endpoints). Never raises
    for an unreachable or refusing Grafana: the outcome says what happened."""
    import requests

    if not getattr(endpoints, "has_grafana", True):
        return Outcome(False, f"the '{event.environment}' stack runs without Grafana")
    session = requests.Session()
    session.trust_env = False  # exactly the stack's CA, never a proxy from the environment
    session.verify = endpoints.ca_file if endpoints.ca_file else True
    session.auth = endpoints.grafana_admin
    url = f"{endpoints.grafana}/api/annotations"
    try:
        r = session.post(url, json=body(event), timeout=timeout)
    except requests.RequestException as exc:
        return Outcome(False, f"Grafana at {endpoints.grafana} did not answer ({_reason(exc)})")
    finally:
        session.close()
    if r.status_code != 200:
        return Outcome(False, f"Grafana at {endpoints.grafana} answered HTTP {r.status_code}")
    try:
        ident = r.json().get("id")
    except ValueError:
        ident = None
    return Outcome(True, f"annotation {ident}" if ident is not None else "annotation written")


def _reason(exc: BaseException) -> str:
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return "its TLS certificate is not signed by the stack's CA"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection refused or unreachable"
    return type(exc).__name__


def record(project, env_name: str, event: Event, *, timeout: float = 5.0) -> Outcome:
    """Annotate an environment's stack, reaching it as `obskit verify` does. A stack that
    never ran (no secrets yet) is an outcome too, not an error."""
    from obskit.errors import ObskitError
    from obskit.render import read_stamp
    from obskit.runtime.process import running_endpoints
    from obskit.stack import endpoints as stack_endpoints

    try:
        ep, _note = running_endpoints(project, env_name, stack_endpoints(project, env_name))
    except ObskitError as exc:
        return Outcome(False, exc.message)
    if event.spec_sha256 is None:
        stamp = read_stamp(project.env_dir(env_name)) or {}
        if stamp.get("spec_sha256"):
            event = Event(event.kind, event.environment, event.summary, event.details, stamp["spec_sha256"])
    return write(ep, event, timeout=timeout)
