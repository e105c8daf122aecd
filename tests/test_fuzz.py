"""A hypothesis fuzz of the loader and renderer, through the CLI as a user calls it
(``obskit --spec FILE render --env ENV --out DIR``, in-process): specs are a rich valid
spec with a few values replaced by hostile ones (text with control characters and YAML
syntax, huge or negative numbers, NaN, booleans, nulls, lists, mappings, renamed keys),
and sometimes raw characters inserted into the YAML text.

For every example:
- the exit code is 0 or 2 (never 1, "unexpected", or an exception);
- on 0, every rendered YAML and JSON file parses, and the gateway's nginx config passes
  `nginx -t` (run once per distinct gateway config: they are deduplicated by hash);
- on 2, the previous render in DIR is byte-identical.

At least 1,000 examples (OBSKIT_FUZZ_EXAMPLES raises it), derandomized so CI is repeatable.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[test]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = max(1000, int(os.environ.get("OBSKIT_FUZZ_EXAMPLES", "1000")))

BASE = {
    "project": "fuzz",
    "tenants": [
        {"name": "apps", "description": "applications", "limits": {"requests_per_second": 50, "burst": 200}},
        {"name": "sandbox", "description": "isolation"},
    ],
    "loki": {"log_level": "info", "retention_period": "744h", "max_line_size": "256k",
             "otlp_index_labels": ["service.name", "k8s.pod.name"]},
    "mimir": {"replicas": 3, "log_level": "info", "retention_period": "0"},
    "collector": {"memory_limit_mib": 400, "batch_timeout": "1s", "scrape_interval": "15s"},
    "grafana": {"admin_user": "admin", "sub_path": "/grafana"},
    "gateway": {"client_max_body_size": "16m", "keepalive_connections": 32, "fail_timeout": "10s"},
    "object_store": {"region": "us-east-1", "buckets": {"loki_chunks": "loki-chunks"}},
    "verify": {"deadline_seconds": 60, "cases": [{"name": "ops logs", "kind": "logql", "tenant": "apps",
                                                   "query": '{service_name="x"}'}]},
    "alerting": {
        "rules": [{
            "name": "CheckoutErrorsHigh", "tenant": "apps", "language": "logql",
            "expr": 'sum(count_over_time({service_name="checkout"} |= "ERROR" [5m]))',
            "condition": "gt", "threshold": 10, "for": "10m", "interval": "1m", "severity": "critical",
            "team": "payments", "summary": "Checkout logs errors", "description": "Customers may fail to pay.",
            "runbook_url": "https://runbooks.example.com/checkout", "labels": {"service": "checkout"},
        }],
        "contact_points": [
            {"name": "hook", "type": "webhook", "url": "https://hooks.example.com/x"},
            {"name": "mail", "type": "email", "addresses": ["oncall@example.com"]},
        ],
        "policy": {"receiver": "mail", "routes": [{"severity": ["critical"], "receiver": "hook",
                                                   "mute_timings": ["nights"]}]},
        "mute_timings": [{"name": "nights", "times": [{"start": "18:00", "end": "24:00"}],
                          "location": "Europe/Berlin"}],
        "smtp": {"host": "smtp.example.com:587", "from_address": "alerts@example.com"},
    },
    "environments": {
        "local": {"kind": "compose", "hostname": "localhost", "ports": {"gateway_https": 8443}},
        "process": {"kind": "process", "base_port": 19100},
        "prod": {"kind": "aws", "region": "eu-west-1", "domain": "obs.example.com",
                 "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "bucket_prefix": "acme-obs-prod-"},
    },
}


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(BASE) if p]

HOSTILE = st.sampled_from([
    "", " ", "a\n", "x: y", "- a", "# c", "{{ x }}", "{", "}", "'", '"', "${X}", "$$", "$host", "\\", ";",
    "env:A/../B", "env:GF_PW", "ssm:/a/b", "\t", "ops", "apps", "\n  evil: 1", "a b", "ü", "🚀", "\x00", "\x1b[2J",
    "0s", "0", "-1", "99999999999999999999h", "1.5", ".nan", "true", "null", "~", "*a", "&a", "!!python/name:os.system",
    "http://x y", "grafana:/d/x", "127.0.0.1", "999.0.0.0/99", "10.0.0.0/8", "UTC", "Mars/Olympus_Mons",
])
VALUES = st.one_of(
    HOSTILE,
    st.text(max_size=24),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-2, max_value=70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(HOSTILE, st.text(max_size=8), st.integers()), max_size=3),
    st.dictionaries(st.one_of(HOSTILE, st.text(max_size=8)), st.one_of(HOSTILE, st.integers()), max_size=2),
)
def _base_value(path):
    value = BASE
    for part in path:
        value = value[part]
    return value


@st.composite
def MUTATION(draw):  # noqa: N802 - a strategy, used like the others
    """A path of the base spec and what happens there. Half keep the value's type (a string
    stays a string, now with spaces, quotes, colons or any character; a number stays a
    number), so many fuzzed specs are valid and render; the rest are anything at all."""
    path = draw(st.sampled_from(PATHS))
    how = draw(st.sampled_from(["like"] * 6 + ["set", "set", "rename", "delete", "child"]))
    base = _base_value(path)
    if how == "like" and isinstance(base, bool):
        value = draw(st.booleans())
    elif how == "like" and isinstance(base, int):
        value = draw(st.integers(min_value=-1, max_value=2 * base + 2))
    elif how == "like" and isinstance(base, str):
        value = draw(st.one_of(st.text(min_size=1, max_size=30),
                               st.builds(lambda n: f"{base}{n}", st.integers(min_value=0, max_value=99)),
                               st.builds(lambda a, b: a + b, st.just(base), HOSTILE),
                               st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=2, max_size=12)))
    else:
        value = draw(VALUES)
    return path, value, "set" if how == "like" else how
RAW = st.one_of(st.none(), st.none(), st.none(), st.tuples(st.floats(min_value=0, max_value=1),
                                     st.one_of(HOSTILE, st.text(min_size=1, max_size=6),
                                               st.sampled_from(['"\\ud83d"', "\x07", "\t", "? [a]\n: b\n",
                                                                "x: &a [1]\ny: *a\n", "\nproject: dup\n"]))))


def _mutate(spec, path, value, how):
    parent = spec
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "rename" and isinstance(parent, dict):
        parent[str(value)[:12] if value not in (None, "") else "x"] = parent.pop(last)
    elif how == "child" and isinstance(parent[last], dict):
        parent[last][str(value)[:12] or "k"] = value
    else:
        parent[last] = value


def _dump(spec) -> str:
    return yaml.safe_dump(spec, allow_unicode=True, sort_keys=False, width=10**6)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Verdicts:
    """Parse and nginx -t results by content hash: the same bytes are judged once."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.parsed: set[str] = set()
        self.gateways: dict[str, str | None] = {}
        self.nginx_runs = 0

    def parse(self, rel: str, data: bytes) -> None:
        key = hashlib.sha256(rel.encode() + b"\0" + data).hexdigest()
        if key in self.parsed:
            return
        if rel.endswith((".yaml", ".yml")):
            yaml.load(data, Loader=_LOADER)
        elif rel.endswith(".json"):
            json.loads(data)
        self.parsed.add(key)

    def nginx(self, resolved, out: Path, env_name: str) -> str | None:
        gateway = out / "configs" / "gateway"
        h = hashlib.sha256()
        for p in sorted(gateway.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(gateway).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
        users = ",".join(sorted(t.name for t in resolved.spec.tenants) + [resolved.spec.operators.tenant,
                                                                          resolved.spec.operators.admin_user])
        h.update(users.encode())
        key = h.hexdigest()
        if key not in self.gateways:
            from obskit import loopback
            from obskit.checks import check_nginx

            self.nginx_runs += 1
            work = self.work / f"nginx-{self.nginx_runs}"
            # The gateway's configs are byte-identical in every environment (the parity rule);
            # nginx -t runs them with the process runtime's bindings, as `obskit check` does.
            local = [n for n, e in resolved.spec.environments.items() if e.kind != "aws"]
            if not local:
                return None
            loop = loopback.plan(resolved.spec, out, work, env_name=local[0])
            result = check_nginx(loop)
            self.gateways[key] = None if result.status == "pass" else result.detail
            shutil.rmtree(work, ignore_errors=True)
        return self.gateways[key]


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _run(args) -> tuple[int, str, str]:
    from obskit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def fuzz_dir(tmp_path, monkeypatch, clean_env):
    import functools

    import obskit.render as render_mod

    if shutil.which("nginx") is None:
        pytest.skip("nginx is not on PATH (apt-get install nginx): every rendered gateway config must pass nginx -t")
    # Only to save time: one Jinja environment (and its compiled templates) for the whole run.
    monkeypatch.setattr(render_mod, "_jinja_env", functools.lru_cache(maxsize=1)(render_mod._jinja_env))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_fuzzed_specs_exit_0_or_2_and_never_lose_the_previous_render(fuzz_dir):
    from obskit.spec.load import load_spec

    spec_file, out = fuzz_dir / "obskit.yaml", fuzz_dir / "out"
    verdicts = Verdicts(fuzz_dir)
    stats = {0: 0, 2: 0}
    for env in ("local", "process", "prod"):  # the unmutated spec renders every environment
        spec_file.write_text(_dump(BASE))
        code, _, err = _run(["--spec", str(spec_file), "render", "--env", env, "--out", str(out)])
        assert code == 0, err

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(MUTATION(), min_size=1, max_size=2), RAW, st.sampled_from(["local", "process", "prod"]))
    def check(mutations, raw, env):
        spec = copy.deepcopy(BASE)
        for path, value, how in mutations:
            try:
                _mutate(spec, path, value, how)
            except (KeyError, IndexError, TypeError):
                pass  # an earlier mutation removed or replaced the parent
        text = _dump(spec)
        if raw is not None:
            at, insert = raw
            i = int(at * len(text))
            text = text[:i] + insert + text[i:]
        spec_file.write_bytes(text.encode("utf-8", "surrogatepass"))
        previous = _tree(out)
        code, _, err = _run(["--spec", str(spec_file), "render", "--env", env, "--out", str(out)])
        assert code in (0, 2), f"exit {code}:\n{err}\n--- spec:\n{text}"
        assert "unexpected" not in err and "Traceback" not in err, err
        stats[code] += 1
        if code == 2:
            assert err.startswith("error: ") or err.startswith("Usage: "), err
            assert _tree(out) == previous, f"a refused spec changed the previous render:\n{err}"
            return
        rendered = _tree(out)
        for rel, data in rendered.items():
            try:
                verdicts.parse(rel, data)
            except (yaml.YAMLError, ValueError) as exc:
                raise AssertionError(f"{rel} does not parse after exit 0: {exc}\n--- spec:\n{text}") from None
        resolved = load_spec(spec_file, environ={})
        problem = verdicts.nginx(resolved, out, env)
        assert problem is None, f"nginx -t refuses the gateway config:\n{problem}\n--- spec:\n{text}"

    check()
    # The fuzz must exercise both sides: specs that render and specs that are refused.
    assert stats[0] >= EXAMPLES // 20 and stats[2] >= EXAMPLES // 5, stats
    assert verdicts.nginx_runs >= 1
    print(f"fuzz: {stats[0]} rendered, {stats[2]} refused, nginx -t run {verdicts.nginx_runs} times")
