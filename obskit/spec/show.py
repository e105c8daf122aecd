"""The effective spec as rows of (key, value, origin), secrets redacted."""

from __future__ import annotations

from typing import Any

from obskit.spec.load import ResolvedSpec, _fmt
from obskit.spec.model import SECRET_REF_RE

SECRET_KEYS = {"admin_password", "access_key_id", "secret_access_key"}


def _redact(key: tuple, value: Any) -> Any:
    if key and key[-1] in SECRET_KEYS and isinstance(value, str):
        # A reference names where the secret lives; the value itself is never read here.
        kind = value.split(":", 1)[0] if SECRET_REF_RE.match(value) else "?"
        return f"<secret {kind}:{value.split(':', 1)[1]}>" if kind != "?" else "<redacted>"
    return value


def effective_rows(resolved: ResolvedSpec) -> list[tuple[str, Any, str]]:
    data = resolved.spec.model_dump(mode="json")
    rows: list[tuple[str, Any, str]] = []

    def walk(node: Any, key: tuple) -> None:
        if isinstance(node, dict) and node:
            for k in sorted(node):
                walk(node[k], key + (k,))
        elif isinstance(node, list) and node and any(isinstance(i, (dict, list)) for i in node):
            for i, item in enumerate(node):
                walk(item, key + (i,))
        else:
            rows.append((_fmt(key), _redact(key, node), resolved.origin(key)))

    walk(data, ())
    return rows
