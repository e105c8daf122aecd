"""HostCpuHigh reads CPU where the collector can see it: the host's CPU from the host
metrics receiver (compose, processes), the task's from ECS task metadata (Fargate).
promtool evaluates the shipped expression on series shaped as each receiver sends them
(names and labels after Mimir's OTLP translation: no suffixes, job and instance).

No rule lives in Mimir's ruler: the spec's alert rules, HostCpuHigh among them, are
Grafana-managed (provisioned into Grafana, evaluated by Grafana against Mimir's query API);
obskit uploads nothing to the ruler's store, and the gateway exposes no ruler configuration
API, so the ruler that `-target=all` runs has no rule groups to evaluate."""

from __future__ import annotations

import subprocess

import yaml

from obskit.spec.load import load_spec

from conftest import require_tool


def _expr() -> str:
    spec = load_spec(None, environ={}, use_default_file=False).spec
    return next(r.expr for r in spec.alerting.rules if r.name == "HostCpuHigh")


def _evaluate(tmp_path, series: list[dict], expected: list[dict]) -> subprocess.CompletedProcess:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "cpu", "rules": [{"record": "host_cpu_busy", "expr": _expr()}]}]}))
    test = tmp_path / "test.yaml"
    test.write_text(yaml.safe_dump({
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series,
                   "promql_expr_test": [{"expr": "host_cpu_busy", "eval_time": "2m", "exp_samples": expected}]}],
    }))
    return subprocess.run(["promtool", "test", "rules", str(test)], capture_output=True, text=True, timeout=60)


HOST = 'job="host", instance="laptop"'


def test_host_metrics_busy_fraction(tmp_path):
    require_tool("promtool", "apt-get install prometheus")
    series = [
        {"series": f'system_cpu_utilization{{{HOST}, cpu="cpu0", state="idle"}}', "values": "0.1 0.1 0.1"},
        {"series": f'system_cpu_utilization{{{HOST}, cpu="cpu0", state="user"}}', "values": "0.9 0.9 0.9"},
        {"series": f'system_cpu_utilization{{{HOST}, cpu="cpu1", state="idle"}}', "values": "0.3 0.3 0.3"},
        {"series": f'system_cpu_utilization{{{HOST}, cpu="cpu1", state="user"}}', "values": "0.7 0.7 0.7"},
    ]
    ok = _evaluate(tmp_path, series, [{"labels": f'host_cpu_busy{{{HOST}}}', "value": 0.8}])
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_ecs_task_cpu_fraction(tmp_path):
    require_tool("promtool", "apt-get install prometheus")
    ecs = 'job="host", instance="obskit-ecs"'
    series = [
        {"series": f"ecs_task_cpu_utilized{{{ecs}}}", "values": "1843.2 1843.2 1843.2"},  # 1.8 vCPU in CPU units
        {"series": f"ecs_task_cpu_reserved{{{ecs}}}", "values": "2048 2048 2048"},  # a 2-vCPU task
    ]
    ok = _evaluate(tmp_path, series, [{"labels": f"host_cpu_busy{{{ecs}}}", "value": 0.9}])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # and the check can fail: a wrong expected value is reported
    bad = _evaluate(tmp_path, series, [{"labels": f"host_cpu_busy{{{ecs}}}", "value": 0.5}])
    assert bad.returncode != 0
