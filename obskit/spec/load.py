"""Load the spec in layers, remember where every value came from, validate once.

Layers, lowest first: the embedded default, ``obskit.yaml``, environment variables
``OBSKIT__SECTION__KEY=value``, and command-line ``--set section.key=value``. Mappings
merge key by key; lists and scalars replace. Nothing is ever written back.
"""

from __future__ import annotations

import copy
import difflib
import errno
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
            if self._commented_out(name):
                hint = (f"{self.path} has environment '{name}' commented out (as `obskit init` writes it): "
                        "uncomment its lines under environments: and fill in your values")
            raise EnvironmentNotFound(
                f"unknown environment '{name}' (declared: {declared})",
                source=self.source_label,
                key="environments",
                hint=hint,
            )
        return env

    def _commented_out(self, name: str) -> bool:
        if self.path is None:
            return False
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        return re.search(rf"(?m)^\s*#\s*{re.escape(name)}:\s*$", text) is not None

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


# Limits that keep a hostile or broken file from exhausting the stack or memory. The spec
# itself is at most about eight levels deep and a few thousand values.
MAX_DEPTH = 40
MAX_NODES = 200_000


def _yaml_error(exc: yaml.YAMLError, text: str, source: str) -> SpecError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character
        code = ord(char) if isinstance(char, str) else char
        line = text.count("\n", 0, max(exc.position, 0)) + 1 if isinstance(exc.position, int) else None
        what = f"U+{code:04X}" if isinstance(code, int) else repr(char)
        return SpecError(
            f"invalid YAML: control character {what} is not allowed",
            source=f"{source}:{line}" if line else source,
            hint="remove it; write special characters as escapes inside double quotes (\\t, \\u00e9)",
        )
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or str(exc)
    return SpecError(
        f"invalid YAML: {problem}",
        source=where,
        hint="check indentation and quoting on that line (a value containing ': ' or '#' needs quotes)",
    )


def _too_deep(line: int, source: str) -> SpecError:
    return SpecError(
        f"nested more than {MAX_DEPTH} levels deep",
        source=f"{source}:{line}",
        hint="the spec is a few levels of mappings and lists; check for unclosed brackets",
    )


def _check_depth(text: str, source: str) -> None:
    """Refuse deep nesting before composing (the composer recurses once per level)."""
    depth = 0
    for event in yaml.parse(text, Loader=_LineLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(event.start_mark.line + 1, source)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _surrogate(value: str) -> str | None:
    for ch in value:
        if "\ud800" <= ch <= "\udfff":
            return ch
    return None


def _bad_unicode(ch: str, where: str, key: str | None = None) -> SpecError:
    return SpecError(
        f"invalid text: a lone surrogate \\u{ord(ch):04x} is not a character",
        source=where,
        key=key,
        hint="write the character itself, or escape a character above U+FFFF as \\U0001F680 (not as two \\u escapes)",
    )


def _yaml_with_lines(text: str, source: str) -> tuple[Any, dict[KeyPath, int]]:
    try:
        _check_depth(text, source)
        node = yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, source) from None
    except RecursionError:  # pragma: no cover - _check_depth refuses this first
        raise _too_deep(1, source) from None
    if node is None:
        return {}, {}
    lines: dict[KeyPath, int] = {}
    budget = [MAX_NODES]

    def walk(n: yaml.Node, path: KeyPath, depth: int) -> None:
        line = n.start_mark.line + 1
        budget[0] -= 1
        if budget[0] < 0:
            raise SpecError(
                f"the YAML expands to more than {MAX_NODES:,} values",
                source=f"{source}:{line}",
                hint="an alias (*name) repeated inside other aliases multiplies; write the values out instead",
            )
        if depth > MAX_DEPTH:  # reachable through aliases nested in aliases
            raise _too_deep(line, source)
        lines.setdefault(path, line)
        if isinstance(n, yaml.ScalarNode):
            bad = _surrogate(n.value)
            if bad:
                raise _bad_unicode(bad, f"{source}:{line}", _fmt(path) or None)
        elif isinstance(n, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for k, v in n.value:
                kline = k.start_mark.line + 1
                if not isinstance(k, yaml.ScalarNode):
                    raise SpecError(
                        f"a key must be a plain name, not a {'list' if isinstance(k, yaml.SequenceNode) else 'mapping'}",
                        source=f"{source}:{kline}",
                        key=_fmt(path) or None,
                        hint="write key: value (a '?' starts a complex key, which the spec never uses)",
                    )
                if k.tag == "tag:yaml.org,2002:merge":
                    walk(v, path, depth + 1)
                    continue
                key = k.value
                bad = _surrogate(key)
                if bad:
                    raise _bad_unicode(bad, f"{source}:{kline}", _fmt(path) or None)
                ident = (k.tag, key)
                if ident in seen:
                    raise SpecError(
                        f"duplicate key '{key}' (also at line {seen[ident]})",
                        source=f"{source}:{kline}",
                        key=_fmt(path + (key,)),
                        hint="YAML would keep only the last one; remove or merge the two",
                    )
                seen[ident] = kline
                lines[path + (key,)] = kline
                walk(v, path + (key,), depth + 1)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,), depth + 1)

    walk(node, (), 0)
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:  # e.g. a bad !!tag or an unhashable merge
        raise _yaml_error(exc, text, source) from None
    return data, lines


def _file_layer(path: Path) -> tuple[Layer, dict[KeyPath, int]]:
    if path.is_symlink() and not path.exists():
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SpecError("the spec file is a symbolic link that loops back on itself", source=str(path),
                                hint="point the link at a real file, or remove it") from None
        raise SpecError(f"the spec file is a symbolic link to {os.readlink(path)}, which does not exist",
                        source=str(path), hint="point the link at a real file, or remove it") from None
    if path.is_dir():
        raise SpecError("the spec path is a folder, not a file", source=str(path),
                        hint="the spec is one YAML file, e.g. obskit.yaml")
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


def _parse_scalar(raw: str, source: str = "command line (--set)") -> Any:
    """A value written in an environment variable or --set: YAML (so 3 is a number, [a, b]
    a list), else the text itself. The same limits as a file apply."""
    bad = _surrogate(raw)
    if bad:
        raise _bad_unicode(bad, source)
    try:
        value, _ = _yaml_with_lines(raw, source)
    except SpecError as exc:
        if not exc.detail.startswith("invalid YAML"):
            raise  # too deep, too large, duplicate keys: the same refusal as in a file
        return raw
    if isinstance(value, dict) and not value and raw.strip() not in ("{}",):
        value = None if raw.strip() in ("", "null", "~") else value
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
        # A mapping merges into a mapping, as between layers; anything else replaces.
        cur[last] = _merge(cur[last], value) if isinstance(cur.get(last), dict) and isinstance(value, dict) else value
    else:
        raise SpecError("cannot set a key inside a scalar value", source=source, key=_fmt(key[:-1]))


def _env_layer(environ: Mapping[str, str], base: dict[str, Any]) -> Layer:
    """Environment variables assign in place, exactly as --set does (so
    OBSKIT__TENANTS__0__LIMITS__BURST=50 changes one value of the first tenant)."""
    data = copy.deepcopy(base)
    origins: dict[KeyPath, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        source = f"environment variable {name}"
        segments = [s.lower() for s in name[len(ENV_PREFIX) :].split("__")]
        if not all(segments):
            raise SpecError(
                "malformed variable name", source=source, hint="write OBSKIT__SECTION__KEY=value"
            )
        key = tuple(int(s) if s.isdigit() else s for s in segments)
        value = _parse_scalar(environ[name], source)
        _assign(data, key, value, source)
        _record(origins, key, value, source)
    return Layer(data, origins)


def _record(origins: dict[KeyPath, str], key: KeyPath, value: Any, source: str) -> None:
    """Remember where the leaves under ``key`` came from: a mapping merges (its other keys
    keep their origins); anything else replaces everything under ``key``."""
    if not isinstance(value, dict):
        for k in [k for k in origins if k[: len(key)] == key]:
            del origins[k]
    for leaf in _leaves(value, key):
        origins[leaf] = source


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
        value = _parse_scalar(raw, source)
        _assign(data, key, value, source)
        _record(origins, key, value, source)
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
            chosen = None
            for m in models:  # a tagged union: pydantic puts the tag (kind or type) in the path
                for tag_field in ("kind", "type"):
                    f = m.model_fields.get(tag_field)
                    if f is not None and typing.get_origin(f.annotation) is typing.Literal \
                            and part in typing.get_args(f.annotation):
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
    "union_tag_invalid": "kind is compose (local docker stack), process (processes on 127.0.0.1) or aws (ECS Fargate)",
    "union_tag_not_found": "every environment needs kind: compose, process or aws",
    "port_clash": "give each published port its own number",
}


def _blame(shown: KeyPath, origins: dict[KeyPath, str], anchors: dict[KeyPath, str]) -> str | None:
    """Where a key path was written: itself or its nearest written ancestor; for a mapping
    no layer wrote whole, a layer that wrote inside it (an unknown section set by an
    environment variable is the variable's fault, not the default's)."""
    inside = sorted(
        (k for k, o in origins.items() if k[: len(shown)] == shown and len(k) > len(shown) and o != DEFAULT_SOURCE),
        key=len,
    )
    probe = shown
    while probe:
        if probe in origins:
            return origins[probe]
        if probe in anchors:  # a mapping written in the file, whose child is at fault
            return anchors[probe]
        if probe == shown and inside:
            return origins[inside[0]]
        probe = probe[:-1]
    return None


def _translate(
    exc: ValidationError,
    resolved_origins: dict[KeyPath, str],
    anchors: dict[KeyPath, str],
    fallback: str,
) -> SpecErrors:
    errors: list[SpecError] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        bad_name = None
        if "[key]" in loc:  # a mapping's key (an environment's name) is what is wrong
            cut = loc.index("[key]")
            bad_name, loc = loc[cut - 1], loc[: cut - 1] + (loc[cut - 1],)
        model, shown = _model_at(loc)
        base = shown
        ctx = err.get("ctx") or {}
        at = ctx.get("at")
        if at:
            suffix = _parse_key(at.lstrip("."), "") if not at.startswith("[") else _parse_key("x" + at, "")[1:]
            shown = shown + tuple(suffix)
        key = _fmt(shown) or "(top level)"
        origin = _blame(shown, resolved_origins, anchors)
        if origin in (None, DEFAULT_SOURCE) and ctx.get("related"):
            # A rule between two keys: blame the one a user layer wrote.
            for rel in str(ctx["related"]).split(","):
                other = base + _parse_key(rel.strip(), "")
                found = _blame(other, resolved_origins, anchors)
                if found not in (None, DEFAULT_SOURCE):
                    origin = found
                    break
        origin = origin or fallback
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
        elif kind == "string_too_short":
            n = ctx.get("min_length", 1)
            msg = "must not be empty" if n == 1 else f"too short: needs at least {n} characters"
        elif kind == "string_too_long":
            msg = f"too long: at most {ctx.get('max_length')} characters"
        elif kind == "finite_number":
            msg = "must be a finite number (not .nan or .inf)"
            hint = "write a plain number"
        elif kind in ("float_type", "bool_type", "int_from_float"):
            msg = "wrong type: expected " + {"float_type": "a number", "bool_type": "true or false",
                                              "int_from_float": "a whole number"}[kind]
        elif kind == "literal_error":
            msg = f"must be one of {ctx.get('expected')}"
        elif kind == "missing":
            msg = f"required key '{shown[-1] if shown else ''}' is missing"
        elif kind in ("ip_v4_address", "ip_any_address"):
            msg = "not an IPv4 address"
            hint = "write four numbers 0-255, e.g. 127.0.0.1"
        elif kind in ("too_short", "too_long"):
            msg = f"needs {'at least' if kind == 'too_short' else 'at most'} {ctx.get('min_length', ctx.get('max_length'))} item(s)"
        elif kind == "union_tag_invalid":
            msg = f"unknown {ctx.get('discriminator', 'kind').strip(chr(39))} '{ctx.get('tag')}' (expected {ctx.get('expected_tags')})"
        elif kind == "union_tag_not_found":
            msg = f"missing key {ctx.get('discriminator', 'kind')}"
        elif kind == "string_pattern_mismatch":
            pattern = ctx.get("pattern", "")
            msg = f"invalid value: must match {pattern}"
            if bad_name is not None:
                msg = f"invalid name '{bad_name}': must match {pattern}"
            if bad_name is not None or (shown and shown[-1] == "name"):
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
    # Anything at that name (a folder, a dangling or looping link) is meant as the spec:
    # reading it names the problem rather than falling back to the default in silence.
    return candidate if os.path.lexists(candidate) else None


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

    merged: dict[str, Any] = {}
    origins: dict[KeyPath, str] = {}
    for layer in layers:
        merged = _merge(merged, layer.data)
        _drop_replaced(origins, layer.data)
        origins.update(layer.origins)
    # Environment variables, then --set, assign in place: only what they name changes.
    for layer_of in (lambda base: _env_layer(environ, base), lambda base: _set_layer(sets, base)):
        layer = layer_of(merged)
        merged = layer.data
        for key, source in sorted(layer.origins.items(), key=lambda kv: len(kv[0])):
            if not isinstance(_get(merged, key), dict):
                for k in [k for k in origins if k[: len(key)] == key]:
                    del origins[k]
        origins.update(layer.origins)

    label = str(spec_path) if spec_path else "embedded default spec"
    try:
        spec = Spec.model_validate(merged)
    except ValidationError as exc:
        raise _translate(exc, origins, anchors, label) from None
    return ResolvedSpec(spec=spec, data=merged, origins=origins, path=spec_path, set_args=tuple(sets))


def _get(data: Any, key: KeyPath) -> Any:
    for part in key:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _drop_replaced(origins: dict[KeyPath, str], data: dict[str, Any]) -> None:
    """When a layer replaces a list or scalar, forget the origins of what it replaced."""
    for leaf in _leaves(data):
        if not leaf:
            continue
        for k in [k for k in origins if len(k) > len(leaf) and k[: len(leaf)] == leaf]:
            del origins[k]
