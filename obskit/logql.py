"""A LogQL well-formedness check, for when no Loki is at hand.

This is a parser for the shape of LogQL (Loki 3.x): stream selectors, line filters,
parser and formatting stages, label filters, range and vector aggregations, binary
operators. It says whether a query is well formed and whether it is a metric query
(what alert rules need); it does not type-check everything Loki does. ``obskit check``
and the tests also hand every query to a real Loki (``/loki/api/v1/format_query``)
when its binary is on PATH.

Grafana's variables (``$__auto``, ``$__interval``, ``$__range``, ``$name``) are replaced
by sample values first, as Grafana would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RANGE_FUNCTIONS = {
    "rate", "count_over_time", "bytes_rate", "bytes_over_time", "absent_over_time",
    "present_over_time", "rate_counter", "sum_over_time", "avg_over_time", "max_over_time",
    "min_over_time", "first_over_time", "last_over_time", "stdvar_over_time",
    "stddev_over_time", "quantile_over_time",
}
UNWRAP_FUNCTIONS = {
    "rate_counter", "sum_over_time", "avg_over_time", "max_over_time", "min_over_time",
    "first_over_time", "last_over_time", "stdvar_over_time", "stddev_over_time", "quantile_over_time",
}
AGGREGATIONS = {"sum", "avg", "min", "max", "stddev", "stdvar", "count", "topk", "bottomk",
                "sort", "sort_desc", "approx_topk"}
PARAM_AGGREGATIONS = {"topk", "bottomk", "approx_topk"}
PARSERS = {"json", "logfmt", "unpack", "decolorize"}
STRING_STAGES = {"regexp", "pattern", "line_format"}
LIST_STAGES = {"drop", "keep", "label_format"}
BINARY_OPS = {"+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless"}
LINE_FILTERS = {"|=", "!=", "|~", "!~", "|>", "!>"}
MATCH_OPS = {"=", "!=", "=~", "!~"}
COMPARE_OPS = {"=", "==", "!=", "=~", "!~", ">", ">=", "<", "<="}

_DURATION = r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y))+"
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<range>\[\s*""" + _DURATION + r"""\s*(?::\s*(?:""" + _DURATION + r"""))?\s*\])
  | (?P<duration>""" + _DURATION + r"""(?![A-Za-z0-9_]))
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:[KMGT]i?B|[kKMGT]B?)?(?![A-Za-z_]))
  | (?P<op>\|=|\|~|\|>|!=|!~|!>|=~|==|>=|<=|[|{}(),=<>+\-*/%^])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
GRAFANA_RANGE_VARS = re.compile(r"\$__(auto|interval|range|rate_interval)\b|\$\{__(auto|interval|range|rate_interval)\}")
GRAFANA_VARS = re.compile(r"\$\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*")


class LogQLError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(query: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if not m:
            raise LogQLError(f"unexpected character {query[pos]!r} at offset {pos}")
        if m.lastgroup != "ws":
            tokens.append(Token(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    return tokens


def for_check(query: str) -> str:
    """Grafana variables replaced by sample values (``$$`` is Grafana's literal ``$``)."""
    query = query.replace("$$", "$")
    query = GRAFANA_RANGE_VARS.sub("5m", query)
    return GRAFANA_VARS.sub("sample", query)


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = tokenize(query)
        self.i = 0

    # -- helpers
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def at(self, *texts: str) -> bool:
        t = self.peek()
        return t is not None and t.text in texts

    def take(self, kind: str | None = None, text: str | None = None, what: str = "") -> Token:
        t = self.peek()
        if t is None or (kind and t.kind != kind) or (text and t.text != text):
            found = f"'{t.text}' at offset {t.pos}" if t else "the end of the query"
            raise LogQLError(f"expected {what or text or kind}, found {found}")
        self.i += 1
        return t

    # -- grammar
    def parse(self) -> bool:
        """Parse the whole query; True for a metric query, False for a log query."""
        if self.at("{"):
            self.log_query()
            metric = False
        else:
            self.expr()
            metric = True
        if self.peek() is not None:
            t = self.peek()
            raise LogQLError(f"unexpected '{t.text}' at offset {t.pos}")
        return metric

    def expr(self) -> None:
        self.unary()
        while self.peek() is not None and self.peek().text in BINARY_OPS:
            self.i += 1
            if self.at("bool"):
                self.i += 1
            if self.at("on", "ignoring"):
                self.i += 1
                self.label_list()
                if self.at("group_left", "group_right"):
                    self.i += 1
                    if self.at("("):
                        self.label_list()
            self.unary()

    def unary(self) -> None:
        if self.at("-", "+"):
            self.i += 1
        self.term()

    def term(self) -> None:
        t = self.peek()
        if t is None:
            raise LogQLError("the query ends where an expression should start")
        if t.kind == "number":
            self.i += 1
        elif t.text == "(":
            self.i += 1
            self.expr()
            self.take(text=")")
        elif t.kind == "ident" and t.text in RANGE_FUNCTIONS:
            self.range_aggregation()
        elif t.kind == "ident" and t.text in AGGREGATIONS:
            self.vector_aggregation()
        elif t.kind == "ident" and t.text == "label_replace":
            self.i += 1
            self.take(text="(")
            self.expr()
            for _ in range(4):
                self.take(text=",")
                self.take("string", what="a string")
            self.take(text=")")
        elif t.kind == "ident" and t.text == "vector":
            self.i += 1
            self.take(text="(")
            self.take("number", what="a number")
            self.take(text=")")
        elif t.text == "{":
            raise LogQLError(
                f"a log query at offset {t.pos} where a metric is needed: wrap it in a range "
                "aggregation such as count_over_time({...}[5m])"
            )
        else:
            raise LogQLError(f"unexpected '{t.text}' at offset {t.pos}")

    def grouping(self) -> None:
        if self.at("by", "without"):
            self.i += 1
            self.label_list()

    def label_list(self) -> None:
        self.take(text="(")
        if not self.at(")"):
            self.take("ident", what="a label name")
            while self.at(","):
                self.i += 1
                self.take("ident", what="a label name")
        self.take(text=")")

    def vector_aggregation(self) -> None:
        name = self.take("ident").text
        self.grouping()
        self.take(text="(")
        if name in PARAM_AGGREGATIONS:
            self.take("number", what=f"the number of series {name} keeps")
            self.take(text=",")
        self.expr()
        self.take(text=")")
        self.grouping()

    def range_aggregation(self) -> None:
        name = self.take("ident").text
        self.take(text="(")
        if name == "quantile_over_time":
            self.take("number", what="a quantile")
            self.take(text=",")
        unwrapped = self.log_range()
        if name in UNWRAP_FUNCTIONS and not unwrapped and name != "rate_counter":
            raise LogQLError(f"{name} needs an unwrapped value: add | unwrap <label>")
        if name in ("count_over_time", "bytes_over_time", "bytes_rate", "absent_over_time") and unwrapped:
            raise LogQLError(f"{name} counts log lines; it takes no unwrap")
        self.take(text=")")
        self.grouping()

    def log_range(self) -> bool:
        """A log query with a range; True when it unwraps a value."""
        if self.at("("):
            self.i += 1
            unwrapped = self.log_range_inner(parenthesised=True)
            self.take(text=")")
            if self.peek() is not None and self.peek().kind == "range":
                self.i += 1
            return unwrapped
        return self.log_range_inner()

    def log_range_inner(self, parenthesised: bool = False) -> bool:
        unwrapped = self.log_query()
        if self.peek() is not None and self.peek().kind == "range":
            self.i += 1
            if self.at("offset"):
                self.i += 1
                self.take("duration", what="an offset duration")
            return unwrapped
        if parenthesised and self.at(")"):
            return unwrapped  # (query)[5m]: the range follows the parenthesis
        self.take("range", what="a range such as [5m]")
        return unwrapped

    def log_query(self) -> bool:
        self.selector()
        unwrapped = False
        while True:
            t = self.peek()
            if t is None:
                return unwrapped
            if t.text in LINE_FILTERS:
                self.line_filter()
            elif t.text == "|":
                unwrapped = self.stage() or unwrapped
            else:
                return unwrapped

    def selector(self) -> None:
        self.take(text="{", what="a stream selector {label=\"value\"}")
        self.matcher()
        while self.at(","):
            self.i += 1
            self.matcher()
        self.take(text="}")

    def matcher(self) -> None:
        self.take("ident", what="a label name")
        op = self.take("op", what="a matcher (=, !=, =~, !~)")
        if op.text not in MATCH_OPS:
            raise LogQLError(f"'{op.text}' at offset {op.pos} is not a label matcher (=, !=, =~, !~)")
        value = self.take("string", what="a quoted value")
        if op.text in ("=~", "!~"):
            _regex(value)

    def line_filter(self) -> None:
        op = self.take("op")
        if self.at("ip"):
            self.i += 1
            self.take(text="(")
            self.take("string", what="an IP or CIDR")
            self.take(text=")")
        else:
            value = self.take("string", what=f"a quoted string after {op.text}")
            if op.text in ("|~", "!~"):
                _regex(value)
        while self.at("or"):
            self.i += 1
            self.take("string", what="a quoted string after 'or'")

    def stage(self) -> bool:
        self.take(text="|")
        t = self.take("ident", what="a pipeline stage (json, logfmt, line_format, a label filter, ...)")
        name = t.text
        if name in PARSERS:
            if name in ("json", "logfmt"):
                while self.at("-"):  # flags: --strict, --keep-empty
                    self.take(text="-")
                    self.take(text="-", what="--strict or --keep-empty")
                    flag = self.take("ident", what="strict or keep_empty")
                    if flag.text not in ("strict", "keep"):
                        raise LogQLError(f"unknown {name} flag at offset {flag.pos}")
                    if flag.text == "keep":
                        self.take(text="-")
                        self.take("ident", text="empty", what="--keep-empty")
                nxt, after = self.peek(), self.peek(1)
                if nxt is not None and nxt.kind == "ident" and after is not None and after.text == "=":
                    self.extraction_list()
            return False
        if name in STRING_STAGES:
            value = self.take("string", what=f"a quoted template after {name}")
            if name == "regexp":
                _regex(value)
            return False
        if name in LIST_STAGES:
            self.label_items(name)
            return False
        if name == "unwrap":
            if self.at("bytes", "duration", "duration_seconds") and self.peek(1) is not None and self.peek(1).text == "(":
                self.i += 2
                self.take("ident", what="a label to unwrap")
                self.take(text=")")
            else:
                self.take("ident", what="a label to unwrap")
            return True
        # a label filter: label op value [and|or|, more]
        self.i -= 1
        self.label_filter()
        return False

    def extraction_list(self) -> None:
        while True:
            self.take("ident", what="a label name")
            self.take(text="=")
            self.take("string", what="a quoted expression")
            if not self.at(","):
                return
            self.i += 1

    def label_items(self, stage: str) -> None:
        while True:
            self.take("ident", what=f"a label for {stage}")
            if self.peek() is not None and self.peek().text in MATCH_OPS | {"=="}:
                self.i += 1
                t = self.take(what="a value")
                if t.kind not in ("string", "ident"):
                    raise LogQLError(f"expected a value at offset {t.pos}")
            if not self.at(","):
                return
            self.i += 1

    def label_filter(self) -> None:
        self.label_predicate()
        while self.at("and", "or", ","):
            self.i += 1
            self.label_predicate()

    def label_predicate(self) -> None:
        if self.at("("):
            self.i += 1
            self.label_filter()
            self.take(text=")")
            return
        self.take("ident", what="a label name")
        op = self.take("op", what="a comparison")
        if op.text not in COMPARE_OPS:
            raise LogQLError(f"'{op.text}' at offset {op.pos} is not a comparison")
        t = self.take(what="a value")
        if t.kind not in ("string", "number", "duration"):
            raise LogQLError(f"expected a value (string, number or duration) at offset {t.pos}, found '{t.text}'")
        if t.kind == "string" and op.text in ("=~", "!~"):
            _regex(t)
        if t.kind == "string" and op.text in (">", ">=", "<", "<="):
            raise LogQLError(f"'{op.text}' compares numbers or durations, not the string {t.text}")


def _regex(token: Token) -> None:
    text = token.text[1:-1]
    if token.text.startswith('"'):
        text = bytes(text, "utf-8").decode("unicode_escape")
    try:
        re.compile(text)
    except re.error as exc:
        raise LogQLError(f"bad regular expression {token.text} at offset {token.pos}: {exc}") from None


def parse(query: str) -> bool:
    """Check a LogQL query. Returns True for a metric query, False for a log query;
    raises LogQLError naming what is wrong and where."""
    if not query.strip():
        raise LogQLError("the query is empty")
    return _Parser(for_check(query)).parse()
