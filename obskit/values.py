"""The values a binding table holds, and the names they are built from.

The lowest layer of the binding tables (:mod:`obskit.bindings`): alerting, bindings and
secrets all read these types, and this module reads nothing of obskit but the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

from obskit.spec.model import Spec


@dataclass(frozen=True, order=True)
class Secret:
    """A secret, by name. ``ref`` is set when the spec points at it (env:VAR / ssm:/path)."""

    name: str
    ref: str | None = None

    @property
    def env_var(self) -> str:
        """The variable that carries it in a compose run (from the process environment)."""
        if self.ref and self.ref.startswith("env:"):
            return self.ref[4:]
        return "OBSKIT_SECRET_" + envname(self.name)

    def to_json(self) -> dict[str, str]:
        out = {"secret": self.name}
        if self.ref:
            out["ref"] = self.ref
        return out


@dataclass(frozen=True, order=True)
class Output:
    """A value known only once the environment is deployed (a Terraform output)."""

    name: str

    def to_json(self) -> dict[str, str]:
        return {"output": self.name}


@dataclass(frozen=True, order=True)
class Local:
    """A value only the machine that runs a process environment knows: ``run_dir`` (the
    run folder, with ``rel`` appended), ``user`` (who runs it: nginx's worker user) or
    ``nginx_resolve`` (``resolve`` where the nginx on PATH parses it). Rendering stays pure;
    the process runtime fills these in when it starts the stack."""

    what: str
    rel: str = ""

    def to_json(self) -> dict[str, str]:
        return {"local": self.what + (f"/{self.rel}" if self.rel else "")}


Binding = Union[str, Secret, Output, Local]


@dataclass(frozen=True)
class Service:
    """One running service: which component's configs it uses and its environment."""

    name: str
    component: str
    env: Mapping[str, Binding]

    def to_json(self) -> dict:
        return {
            "component": self.component,
            "env": {
                k: (v.to_json() if isinstance(v, (Secret, Output, Local)) else {"value": v})
                for k, v in sorted(self.env.items())
            },
        }


def envname(name: str) -> str:
    """``mimir-1`` -> ``MIMIR_1``: a name usable inside an environment variable."""
    return name.upper().replace("-", "_").replace(".", "_")



def tenant_names(spec: Spec) -> list[str]:
    """User tenants, then the operators' tenant."""
    return [t.name for t in spec.tenants] + [spec.operators.tenant]
