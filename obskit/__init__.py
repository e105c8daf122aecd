"""obskit: prove an observability stack locally, then ship exactly that to the cloud.

The public API is small and stable:

- :func:`load_spec` resolves the layered spec (defaults < obskit.yaml < env vars < --set).
- :func:`render` turns a spec and an environment name into ``{path: bytes}``.
- :func:`write_environment` writes a rendered environment atomically.
- :mod:`obskit.errors` holds the error hierarchy every command maps to exit codes.

Heavy modules are imported on first use so that ``obskit --help`` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_spec", "render", "write_environment"]


def __getattr__(name: str):  # PEP 562: lazy public API
    if name == "load_spec":
        from obskit.spec.load import load_spec

        return load_spec
    if name in ("render", "write_environment"):
        from obskit import render as _render

        return getattr(_render, name)
    raise AttributeError(f"module 'obskit' has no attribute {name!r}")
