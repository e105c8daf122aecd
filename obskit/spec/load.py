"""Load the spec in layers, remember where every value came from, validate once.

Layers, lowest first: the embedded default, ``obskit.yaml``, environment variables
``OBSKIT__SECTION__KEY=value``, and command-line ``--set section.key=value``. Mappings
merge key by key; lists and scalars replace. Nothing is ever written back.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml
from pydantic import BaseModel, ValidationError

from obskit.errors import EnvironmentNotFound, SpecError, SpecErrors
from obskit.spec.model import Spec

SPEC_FILENAME = "obskit.yaml"
ENV_PREFIX = "OBSKIT__"
DEFAULT_SOURCE = "default"

KeyPath = tuple[Any, ...]


@dataclass(frozen=True)
class Layer:
    """One layer of spec values and, for each leaf, a human label of where it came from."""

    data: dict[str, Any]
    origins: dict[KeyPath, str]


@dataclass(frozen=True)
class ResolvedSpec:
    """A validated spec plus the provenance of every leaf value."""

    spec: Spec
    data: dict[str, Any]
    origins: dict[KeyPath, str]
    path: Path | None
    set_args: tuple[str, ...] = field(default=())

    @property
    def source_label(self) -> str:
        return str(self.path) if self.path else "embedded default spec"

    def origin(self, key: KeyPath) -> str:
        """The layer a key (or its nearest set ancestor) came from."""
        key = tuple(key)
        while key:
            if key in self.origins:
                return self.origins[key]
            key = key[:-1]
        return DEFAULT_SOURCE

    def environment(self, name: str):
        env = self.spec.environments.get(name)
        if env is None:
            declared = ", ".join(sorted(self.spec.environments)) or "none"
            close = difflib.get_close_matches(name, list(self.spec.environments), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"declare it under environments: in {SPEC_FILENAME}"
            raise EnvironmentNotFound(
                f"unknown environment '{name}' (declared: {declared})",
                source=self.source_label,
                key="environments",
                hint=hint,
            )
        return env

    def digest(self) -> str:
        """A stable hash of the effective spec (used to stamp rendered environments)."""
        canon = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


# --------------------------------------------------------------------------- layers


def _leaves(data: Any, prefix: KeyPath = ()) -> Iterable[KeyPath]:
    if isinstance(data, dict) and data:
        for k, v in data.items():
            yield from _leaves(v, prefix + (k,))
    elif isinstance(data, list) and data:
        yield prefix
        for i, v in enumerate(data):
            yield from _leaves(v, prefix + (i,))
    else:
        yield prefix


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


class _LineLoader(yaml.SafeLoader):
    """A safe loader that also returns the line of every key path."""


def _yaml_with_lines(text: str, source: str) -> tuple[Any, dict[KeyPath, int]]:
    try:
        node = yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            f"invalid YAML: {problem}",
            source=where,
            hint="check indentation and quoting on that line (a value containing ': ' or '#' needs quotes)",
        ) from None
    if node is None:
        return {}, {}
    lines: dict[KeyPath, int] = {}

    def walk(n: yaml.Node, path: KeyPath) -> None:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    walk(node, ())
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:  # pragma: no cover - compose already parsed it
        raise SpecError(f"invalid YAML: {exc}", source=source) from None
    return data, lines


def _file_layer(path: Path) -> tuple[Layer, dict[KeyPath, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            "spec file not found",
            source=str(path),
            hint="run `obskit init` to write a starter obskit.yaml, or omit --spec to use the embedded default",
        ) from None
    except (PermissionError, IsADirectoryError, UnicodeDecodeError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError(
            f"cannot read the spec file: {reason}",
            source=str(path),
            hint="check the path and its permissions (it must be a readable UTF-8 text file)",
        ) from None
    data, lines = _yaml_with_lines(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(
            f"the spec must be a mapping of sections, not a {type(data).__name__}",
            source=f"{path}:1",
            hint="start from `obskit init`",
        )
    origins = {leaf: f"{path}:{lines.get(leaf, 1)}" for leaf in _leaves(data)}
    return Layer(data, origins), {k: f"{path}:{v}" for k, v in lines.items()}


def _default_layer() -> Layer:
    text = resources.files("obskit.spec").joinpath("default.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return Layer(data, {leaf: DEFAULT_SOURCE for leaf in _leaves(data)})


def _parse_scalar(raw: str) -> Any:
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return raw if value is None and raw.strip() not in ("null", "~") else value


def _parse_key(dotted: str, source: str) -> KeyPath:
    parts: list[Any] = []
    for part in dotted.split("."):
        if not part:
            raise SpecError("empty key segment", source=source, hint="write section.key=value")
        for name, index in re.findall(r"([^\[\]]+)|\[(\d+)\]", part):
            parts.append(int(index) if index else (int(name) if name.isdigit() else name))
    return tuple(parts)


def _assign(data: dict[str, Any], key: KeyPath, value: Any, source: str) -> None:
    cur: Any = data
    for i, part in enumerate(key[:-1]):
        nxt = key[i + 1]
        if isinstance(cur, list):
            if isinstance(part, int) and part == len(cur):  # one past the end appends
                cur.append([] if isinstance(nxt, int) else {})
            if not isinstance(part, int) or part >= len(cur):
                raise SpecError(
                    f"index {part} is out of range (the list has {len(cur)} items)",
                    source=source,
                    key=_fmt(key[: i + 1]),
                )
            cur = cur[part]
            continue
        if not isinstance(cur, dict):
            raise SpecError("cannot set a key inside a scalar value", source=source, key=_fmt(key[:i]))
        if part not in cur or cur[part] is None:
            cur[part] = [] if isinstance(nxt, int) else {}
        cur = cur[part]
    last = key[-1]
    if isinstance(cur, list):
        if not isinstance(last, int) or last > len(cur):
            raise SpecError(f"index {last} is out of range", source=source, key=_fmt(key))
        if last == len(cur):
            cur.append(value)
        else:
            cur[last] = value
    elif isinstance(cur, dict):
        cur[last] = value
    else:
        raise SpecError("cannot set a key inside a scalar value", source=source, key=_fmt(key[:-1]))


def _env_layer(environ: Mapping[str, str]) -> Layer:
    data: dict[str, Any] = {}
    origins: dict[KeyPath, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        source = f"environment variable {name}"
        segments = [s.lower() for s in name[len(ENV_PREFIX) :].split("__")]
        key = tuple(int(s) if s.isdigit() else s for s in segments)
        if not all(segments):
            raise SpecError(
                "malformed variable name", source=source, hint="write OBSKIT__SECTION__KEY=value"
            )
        value = _parse_scalar(environ[name])
        _assign(data, key, value, source)
        for leaf in _leaves(value, key):
            origins[leaf] = source
    return Layer(data, origins)


def _set_layer(sets: Sequence[str], base: dict[str, Any]) -> Layer:
    data = copy.deepcopy(base)
    origins: dict[KeyPath, str] = {}
    for item in sets:
        source = "command line (--set)"
        if "=" not in item:
            raise SpecError(
                f"--set expects key=value, got {item!r}",
                source="command line",
                hint="for example: --set mimir.replicas=1",
            )
        dotted, raw = item.split("=", 1)
        key = _parse_key(dotted.strip(), source)
        value = _parse_scalar(raw)
        _assign(data, key, value, source)
        for leaf in _leaves(value, key):
            origins[leaf] = source
    return Layer(data, origins)


# --------------------------------------------------------------------------- errors


def _fmt(key: Sequence[Any]) -> str:
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    return tp


def _model_at(loc: Sequence[Any]) -> tuple[type[BaseModel] | None, KeyPath]:
    """Walk the Spec model along a pydantic error location.

    Returns the model class at the end of the walk (if any) and the user-facing key path,
    which drops the discriminator tags pydantic inserts for tagged unions.
    """
    tp: Any = Spec
    shown: list[Any] = []
    i = 0
    while i < len(loc):
        part = loc[i]
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field_info = tp.model_fields.get(part) if isinstance(part, str) else None
            shown.append(part)
            if field_info is None:
                return tp, tuple(shown) + tuple(loc[i + 1 :])
            tp = field_info.annotation
        elif origin in (list, tuple):
            shown.append(part)
            tp = args[0] if args else Any
        elif origin is dict:
            shown.append(part)
            tp = args[1] if len(args) > 1 else Any
        elif origin in (typing.Union, types.UnionType):
            members = [_unwrap(a) for a in args if a is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            tagged = [m for m in models if "kind" in m.model_fields]
            chosen = None
            for m in tagged:
                kind = typing.get_args(m.model_fields["kind"].annotation)
                if part in kind:
                    chosen = m
            if chosen is not None:
                tp = chosen  # the discriminator tag is not a user key: skip it
            elif len(members) == 1:
                tp = members[0]
                continue
            else:
                shown.append(part)
                tp = Any
        else:
            shown.append(part)
            tp = Any
        i += 1
    tp = _unwrap(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
        tp = members[0] if len(members) == 1 else None
    model = tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None
    return model, tuple(shown)


_HINTS = {
    "bad_port": "pick a free port between 1024 and 65535",
    "duplicate_tenant": "tenant names must be unique; rename or remove one of them",
    "plain_secret": "delete the value and obskit generates the secret for you, or write env:VARIABLE (read from the environment) or ssm:/path/to/parameter",
    "int_parsing": "write a whole number without quotes",
    "int_type": "write a whole number without quotes",
    "bool_parsing": "write true or false",
    "string_pattern_mismatch": "see `obskit init` for the expected format",
    "literal_error": "use one of the listed values",
    "unpinned_image": "images are pinned to exact versions in one place: images:",
    "missing": "add this key",
    "union_tag_invalid": "kind is either compose (local docker stack) or aws (ECS Fargate)",
    "union_tag_not_found": "every environment needs kind: compose or kind: aws",
    "port_clash": "give each published port its own number",
}


def _translate(
    exc: ValidationError,
    resolved_origins: dict[KeyPath, str],
    anchors: dict[KeyPath, str],
    fallback: str,
) -> SpecErrors:
    errors: list[SpecError] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        model, shown = _model_at(loc)
        ctx = err.get("ctx") or {}
        at = ctx.get("at")
        if at:
            suffix = _parse_key(at.lstrip("."), "") if not at.startswith("[") else _parse_key("x" + at, "")[1:]
            shown = shown + tuple(suffix)
        key = _fmt(shown) or "(top level)"
        origin = fallback
        probe = shown
        while probe:
            if probe in resolved_origins:
                origin = resolved_origins[probe]
                break
            if probe in anchors:  # a mapping written in the file, whose child is at fault
                origin = anchors[probe]
                break
            probe = probe[:-1]
        if origin == DEFAULT_SOURCE:
            origin = f"{fallback} (default)"
        kind = err["type"]
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        hint = _HINTS.get(kind)
        if kind == "extra_forbidden":
            parent_model, _ = _model_at(loc[:-1]) if len(loc) > 1 else (Spec, ())
            allowed = sorted(f.alias or n for n, f in parent_model.model_fields.items()) if parent_model else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg = f"unknown key '{loc[-1]}'"
            hint = f"did you mean '{close[0]}'?" if close else (
                "allowed keys here: " + ", ".join(allowed) if allowed else "remove it"
            )
        elif kind in ("int_parsing", "int_type", "bool_parsing", "string_type", "float_parsing", "dict_type", "list_type", "model_type"):
            expected = {
                "int_parsing": "a whole number",
                "int_type": "a whole number",
                "bool_parsing": "true or false",
                "string_type": "a string",
                "float_parsing": "a number",
                "dict_type": "a mapping",
                "list_type": "a list",
                "model_type": "a mapping",
            }[kind]
            msg = f"wrong type: expected {expected}"
            if kind in ("dict_type", "list_type", "model_type"):
                hint = "see `obskit init` for the shape of this section"
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            bound = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
                     "greater_than": ("more than", "gt"), "less_than": ("less than", "lt")}[kind]
            msg = f"out of range: must be {bound[0]} {ctx.get(bound[1])}"
            hint = "see `obskit config show` for the default"
        elif kind in ("too_short", "too_long"):
            msg = f"needs {'at least' if kind == 'too_short' else 'at most'} {ctx.get('min_length', ctx.get('max_length'))} item(s)"
        elif kind == "union_tag_invalid":
            msg = f"unknown kind '{ctx.get('tag')}' (expected compose or aws)"
        elif kind == "union_tag_not_found":
            msg = "missing key 'kind'"
        elif kind == "string_pattern_mismatch":
            pattern = ctx.get("pattern", "")
            msg = f"invalid value: must match {pattern}"
            if shown and shown[-1] == "name":
                hint = "names are 2-32 lowercase letters, digits and '-', starting with a letter"
        errors.append(SpecError(msg, source=origin, key=key, hint=hint))
    return SpecErrors(errors)


# --------------------------------------------------------------------------- entry point


def find_spec_file(explicit: str | os.PathLike[str] | None, cwd: Path | None = None) -> Path | None:
    """The spec file to use: an explicit path, $OBSKIT_SPEC, ./obskit.yaml, or none."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("OBSKIT_SPEC")
    if env:
        return Path(env)
    candidate = (cwd / SPEC_FILENAME) if cwd else Path(SPEC_FILENAME)
    return candidate if candidate.is_file() else None


def load_spec(
    path: str | os.PathLike[str] | None = None,
    *,
    sets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    use_default_file: bool = True,
) -> ResolvedSpec:
    """Resolve and validate the spec.

    ``path`` is the spec file; without it, ``$OBSKIT_SPEC`` or ``./obskit.yaml`` when present
    (``use_default_file``), else the embedded default alone.
    """
    environ = os.environ if environ is None else environ
    spec_path = find_spec_file(path) if use_default_file else (Path(path) if path else None)
    layers = [_default_layer()]
    anchors: dict[KeyPath, str] = {}
    if spec_path is not None:
        file_layer, anchors = _file_layer(spec_path)
        layers.append(file_layer)
    layers.append(_env_layer(environ))

    merged: dict[str, Any] = {}
    origins: dict[KeyPath, str] = {}
    for layer in layers:
        merged = _merge(merged, layer.data)
        _drop_replaced(origins, layer.data)
        origins.update(layer.origins)
    set_layer = _set_layer(sets, merged)  # --set assigns in place: only what it names changes
    merged = set_layer.data
    for leaf in set_layer.origins:
        for k in [k for k in origins if k[: len(leaf)] == leaf]:
            del origins[k]
    origins.update(set_layer.origins)

    label = str(spec_path) if spec_path else "embedded default spec"
    try:
        spec = Spec.model_validate(merged)
    except ValidationError as exc:
        raise _translate(exc, origins, anchors, label) from None
    return ResolvedSpec(spec=spec, data=merged, origins=origins, path=spec_path, set_args=tuple(sets))


def _drop_replaced(origins: dict[KeyPath, str], data: dict[str, Any]) -> None:
    """When a layer replaces a list or scalar, forget the origins of what it replaced."""
    for leaf in _leaves(data):
        if not leaf:
            continue
        for k in [k for k in origins if len(k) > len(leaf) and k[: len(leaf)] == leaf]:
            del origins[k]
