"""Load scenarios: files in ``load/scenarios/`` (or any path), validated like the spec."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from obskit.errors import UsageError

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
MAX_POINTS_PER_SERIES_PER_S = 1000  # one point per series per millisecond at most


def seconds(text: str | int | float) -> float:
    if isinstance(text, (int, float)):
        return float(text)
    m = DURATION.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r}: write 30s, 2m, 500ms")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Point(_Model):
    at: str | float = Field(description="Time from the start: 0s, 30s, 2m")
    rate: float = Field(ge=0, description="Items per second at that time")

    @property
    def t(self) -> float:
        return seconds(self.at)


Profile = list[Point]


def rate_at(profile: Profile, t: float) -> float:
    """Piecewise linear between points; the first rate before, the last after."""
    if not profile:
        return 0.0
    if t <= profile[0].t:
        return profile[0].rate
    for a, b in zip(profile, profile[1:]):
        if a.t <= t <= b.t:
            if b.t == a.t:
                return b.rate
            return a.rate + (b.rate - a.rate) * (t - a.t) / (b.t - a.t)
    return profile[-1].rate


def items_until(profile: Profile, t: float, step: float = 0.01) -> float:
    """The integral of the rate from 0 to t (items due by then)."""
    if not profile or t <= 0:
        return 0.0
    total, x = 0.0, 0.0
    knots = sorted({p.t for p in profile if 0 < p.t < t} | {t})
    for k in knots:
        total += (rate_at(profile, x) + rate_at(profile, k)) / 2 * (k - x)
        x = k
    return total


class TenantLoad(_Model):
    tenant: str | None = Field(None, description="Default: the spec's first tenant")
    logs: Profile = Field(default_factory=list)
    points: Profile = Field(default_factory=list)
    retries: int | None = Field(None, ge=0, le=20, description="Override of the scenario's retries for this tenant")
    max_in_flight: int | None = Field(None, ge=1, le=1024, description="Override of the scenario's max_in_flight")


class LogContent(_Model):
    """What log records say. ``fast``: each service cycles through 64 records encoded once
    (only timestamps change; compresses far better than real logs). ``realistic``: bodies
    are made per record from the shape's templates with varying ids, numbers and traces."""

    variety: Literal["realistic", "fast"] = "realistic"
    shape: Literal["text", "json", "stacktrace", "mixed"] = "mixed"
    distinct_per_s: int | None = Field(
        None, ge=0, description="realistic: distinct bodies per second per tenant (the rest repeat recent "
                                "ones); default: every record is new")


class Isolation(_Model):
    """Run the scenario twice, without the flood and with it, and compare one tenant's
    accepted rate and latency over the same window of both runs (see obskit.loadgen.isolation)."""

    tenant: str | None = Field(None, description="The quiet tenant (as in tenants[].tenant)")
    window: tuple[str, str] = Field(description="The seconds compared in both runs: [from, to]")
    baseline: Literal["at_limit", "alone"] = Field(
        "at_limit", description="The run without the flood: every other tenant sends at its gateway limit "
                                "(at_limit) or not at all (alone)")
    rounds: int = Field(3, ge=1, le=20, description="Baseline and flood runs alternate this many times; the "
                                                    "comparison pools them, so drift between runs averages out")
    tolerance: float = Field(0.05, gt=0, le=1)

    def window_s(self) -> tuple[float, float]:
        a, b = self.window
        return seconds(a), seconds(b)


class Scenario(_Model):
    name: str
    description: str = ""
    duration: str = "60s"
    workers: int | None = Field(None, ge=1, le=64, description="Sending processes; default: as many as the peak rates need, at most the CPU count")
    services: int = Field(20, ge=1, le=100000, description="Distinct service.name values per tenant (Loki streams)")
    series_per_service: int = Field(50, ge=1, le=100000, description="Gauge series per service (Mimir series)")
    body_bytes: int = Field(120, ge=0, le=65536)
    batch_logs: int = Field(1000, ge=1, le=100000)
    batch_points: int = Field(2000, ge=1, le=200000)
    retries: int = Field(3, ge=0, le=20)
    max_in_flight: int = Field(32, ge=1, le=1024, description="Concurrent requests per tenant and signal, over all workers")
    late_after: str = Field("1s", description="A batch that cannot start this long after it is due is not sent")
    compression: Literal["none", "gzip"] = "none"
    log_content: LogContent = LogContent()
    freshness_every: str = "2s"
    isolation: Isolation | None = None
    tenants: list[TenantLoad] = Field(min_length=1)

    @property
    def duration_s(self) -> float:
        return seconds(self.duration)

    @model_validator(mode="after")
    def _check(self) -> "Scenario":
        seconds(self.duration)
        seconds(self.freshness_every)
        seconds(self.late_after)
        if self.isolation is not None:
            names = [t.tenant for t in self.tenants]
            if self.isolation.tenant not in names:
                listed = ", ".join("the default tenant (no tenant:)" if n is None else repr(n) for n in names)
                quiet = "the default tenant (null)" if self.isolation.tenant is None else repr(self.isolation.tenant)
                raise PydanticCustomError("isolation", "isolation.tenant: {quiet} is not one of the scenario's "
                                          "tenants ({listed})", {"quiet": quiet, "listed": listed})
            if len(names) < 2:
                raise PydanticCustomError("isolation", "isolation needs a second tenant (the neighbour that floods) "
                                          "besides the quiet one", {})
            a, b = self.isolation.window_s()
            if not 0 <= a < b <= self.duration_s:
                raise PydanticCustomError("window", "isolation.window must lie within the run", {})
            if len(self.tenants) < 2:
                raise PydanticCustomError("isolation", "isolation needs a second tenant (the neighbour)", {})
        series = self.services * self.series_per_service
        for t in self.tenants:
            for p in t.logs + t.points:
                seconds(p.at)
            peak = max((p.rate for p in t.points), default=0)
            if peak > series * MAX_POINTS_PER_SERIES_PER_S:
                raise PydanticCustomError(
                    "series", "{peak} points/s over {series} series is more than one point per series per "
                    "millisecond: raise services or series_per_service", {"peak": peak, "series": series})
        return self


def with_duration(scenario: Scenario, duration: str) -> Scenario:
    """The scenario run for ``duration`` instead (``obskit load --duration``): the rate profile
    is cut or held as it is, an isolation window keeps its place relative to the run."""
    data = scenario.model_dump()
    data["duration"] = duration
    if scenario.isolation is not None:
        k = seconds(duration) / scenario.duration_s
        data["isolation"]["window"] = [f"{x * k:g}s" for x in scenario.isolation.window_s()]
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise UsageError(f"scenario {scenario.name} with --duration {duration}: {first['msg']}") from None


def scenario_dir() -> Path:
    from obskit.resources import data_root

    return data_root() / "load" / "scenarios"


def available() -> list[str]:
    return sorted(p.stem for p in scenario_dir().glob("*.yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    path = Path(name_or_path)
    if not path.exists():
        path = scenario_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        raise UsageError(f"no scenario '{name_or_path}'", hint="one of: " + ", ".join(available()) + ", or a file path")
    try:
        return Scenario.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        # The built-in scenarios ship with obskit (load/README.md does not): they show the format.
        hint = (f"the built-in scenarios show the format: {scenario_dir()}/"
                f"{{{','.join(available())}}}.yaml; every key is described in load/README.md of obskit's source")
        raise UsageError(f"{path}: " + (f"{where}: " if where else "") + first["msg"], hint=hint) from None
    except (ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: {exc}") from None
