"""`obskit parity ENV_A ENV_B`: proof that two environments run the same config bytes.

Every file under ``configs/`` must be byte-identical, and so must the component images'
Dockerfiles (``images/``, with the build context's ``.dockerignore``); what may differ is
the binding table (values, secrets, deploy-time outputs per service), listed side by side.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from obskit import bindings
from obskit.errors import ObskitError
from obskit.render import render


# What must be byte-identical between any two environments.
PARITY_SCOPE = ("configs/", "images/", ".dockerignore")


class ConfigDrift(ObskitError):
    exit_code = 6


def describe(binding) -> str:
    if binding is None:
        return "-"
    if isinstance(binding, bindings.Secret):
        return f"secret {binding.name}" + (f" ({binding.ref})" if binding.ref else "")
    if isinstance(binding, bindings.Output):
        return f"output {binding.name}"
    from obskit.values import Local

    if isinstance(binding, Local):  # known where the process runtime runs: say what, not how it is kept
        return {"run_dir": f"<run folder>/{binding.rel}" if binding.rel else "<run folder>",
                "user": "<the user running obskit>",
                "nginx_resolve": "<'resolve' where the nginx on PATH reads it>"}.get(
                    binding.what, f"<{binding.what}{'/' + binding.rel if binding.rel else ''} on this machine>")
    return str(binding) if binding != "" else '""'



@dataclass
class ParityResult:
    env_a: str
    env_b: str
    identical: list[str] = field(default_factory=list)
    drift: list[dict] = field(default_factory=list)
    bindings: list[dict] = field(default_factory=list)  # only the rows that differ

    @property
    def ok(self) -> bool:
        return not self.drift

    def to_json(self) -> dict:
        return {"env_a": self.env_a, "env_b": self.env_b, "ok": self.ok, "identical": self.identical,
                "drift": self.drift, "bindings": self.bindings}


def compare(files_a: dict[str, bytes], files_b: dict[str, bytes], services_a, services_b, env_a: str, env_b: str) -> ParityResult:
    result = ParityResult(env_a, env_b)
    configs = sorted({p for p in (*files_a, *files_b) if p.startswith(PARITY_SCOPE)})
    for rel in configs:
        a, b = files_a.get(rel), files_b.get(rel)
        if a == b:
            result.identical.append(rel)
            continue
        result.drift.append({
            "path": rel,
            env_a: hashlib.sha256(a).hexdigest()[:16] if a is not None else None,
            env_b: hashlib.sha256(b).hexdigest()[:16] if b is not None else None,
        })
    for service in sorted(set(services_a) | set(services_b)):
        env_vars_a = services_a[service].env if service in services_a else {}
        env_vars_b = services_b[service].env if service in services_b else {}
        for var in sorted(set(env_vars_a) | set(env_vars_b)):
            da, db = describe(env_vars_a.get(var)), describe(env_vars_b.get(var))
            if da != db:
                result.bindings.append({"service": service, "variable": var, env_a: da, env_b: db})
    return result


def parity(resolved, env_a: str, env_b: str) -> ParityResult:
    spec = resolved.spec
    resolved.environment(env_a)
    resolved.environment(env_b)
    return compare(render(resolved, env_a), render(resolved, env_b),
                   bindings.services(spec, env_a), bindings.services(spec, env_b), env_a, env_b)
