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


def origin(resolved: ResolvedSpec, key: tuple) -> str:
    """Where a key's value came from: the layer that set exactly this key, or, for a key
    inside a short form written as one value (a tenant given by its name), that value's
    layer. A key inside a list item the file wrote without it is a default, not the file's."""
    from obskit.spec.load import DEFAULT_SOURCE

    origins = resolved.origins
    if key in origins:
        return origins[key]
    for n in range(len(key) - 1, 0, -1):
        if key[:n] in origins:
            # A list (its items follow as [i]) was written, but not this key in its item.
            return DEFAULT_SOURCE if isinstance(key[n], int) or (key[:n] + (0,)) in origins or \
                any(k[:n] == key[:n] and len(k) > n for k in origins) else origins[key[:n]]
    return DEFAULT_SOURCE


def effective_rows(resolved: ResolvedSpec) -> list[tuple[str, Any, str]]:
    # By alias: the keys as the file writes them (`for`, not the model's `for_`).
    data = resolved.spec.model_dump(mode="json", by_alias=True)
    rows: list[tuple[str, Any, str]] = []

    def walk(node: Any, key: tuple) -> None:
        if isinstance(node, dict) and node:
            for k in sorted(node):
                walk(node[k], key + (k,))
        elif isinstance(node, list) and node and any(isinstance(i, (dict, list)) for i in node):
            for i, item in enumerate(node):
                walk(item, key + (i,))
        else:
            rows.append((_fmt(key), _redact(key, node), origin(resolved, key)))

    walk(data, ())
    return rows
