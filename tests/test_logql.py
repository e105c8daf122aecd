"""The LogQL well-formedness check: what it accepts, what it refuses and how it says so.
With a Loki binary on PATH, the same queries go to a real Loki too (test_binaries)."""

from __future__ import annotations

import pytest

from obskit.logql import LogQLError, parse

METRIC = [
    'sum by (status) (count_over_time({service_name="obskit-gateway"} | status=~"401|403|429|5.." [$__auto]))',
    'sum(count_over_time({service_name="obskit-gateway"} | status >= 500 [5m])) / sum(count_over_time({service_name="obskit-gateway"}[5m]))',
    'quantile_over_time(0.99, {app="a"} | logfmt | unwrap duration(latency) [5m]) by (route)',
    'topk(5, sum by (service_name) (rate({env="p"} |~ "err.*" [1m])))',
    'rate({a="b"} | logfmt --strict | line_format "{{.msg}}" [5m])',
    'sum(rate({a="b"}[5m])) > bool 3',
    'absent_over_time({a="b"}[10m])',
    'count_over_time(({a="b"} |= "x")[5m])',
    'sum by (detected_level) (count_over_time({service_name="$service_name"} [$__interval]))',
    'label_replace(rate({a="b"}[1m]), "x", "$1", "a", "(.*)")',
    # stack-health: a structured-metadata field unwrapped, lines that fail it dropped
    'max(max_over_time({service_name="obskit-gateway"} | unwrap connections_active | __error__="" [$__auto]))',
    'sum by (status) (rate({service_name="obskit-gateway"} [$__auto]))',
    # GatewayErrorRatioHigh: no 5xx is a ratio of 0, not an empty result
    '(sum(count_over_time({service_name="obskit-gateway"} | status >= 500 [5m])) or vector(0))'
    ' / sum(count_over_time({service_name="obskit-gateway"} [5m]))',
]
LOG = [
    '{service_name="obskit-gateway"}',
    '{service_name="x", env=~"prod|dev"} |= "error" != `timeout` | json | status >= 500',
    '{a="b"} | pattern `<ip> - <_>` | drop __error__, ip',
    '{a="b"} | json level="lvl", m="msg" | level="error" or status > 300',
    '{a="b"} |= ip("10.0.0.0/8")',
]
BAD = [
    ('{service_name="x"', "expected }"),
    ('count_over_time({a="b"})', "a range such as [5m]"),
    ('sum(rate({a="b"}[5m])', "expected )"),
    ("{a=b}", "a quoted value"),
    ('{a="b"} |= error', "a quoted string after |="),
    ('sum_over_time({a="b"}[5m])', "needs an unwrapped value"),
    ('{a=~"("}', "bad regular expression"),
    ('rate({a="b"}[5x])', "offset 12"),
    ("", "empty"),
    ('sum(count_over_time({a="b"}[5m])) >', "ends where an expression should start"),
    ('sum({a="b"})', "a log query at offset 4 where a metric is needed"),
    ('{a="b"} | status > "x"', "compares numbers"),
    ('max_over_time({a="b"} | unwrap [5m])', "a label to unwrap"),
    ('sum(count_over_time({a="b"}[5m])) or vector()', "a number"),
]


@pytest.mark.parametrize("query", METRIC)
def test_metric_queries_are_well_formed_and_recognised(query):
    assert parse(query) is True


@pytest.mark.parametrize("query", LOG)
def test_log_queries_are_well_formed_and_recognised(query):
    assert parse(query) is False


@pytest.mark.parametrize("query, message", BAD)
def test_malformed_queries_are_refused_with_the_reason(query, message):
    with pytest.raises(LogQLError) as info:
        parse(query)
    assert message in str(info.value)
