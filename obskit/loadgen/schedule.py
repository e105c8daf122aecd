"""When every batch is due: the open-loop schedule of one (tenant, signal) stream.

The rate profile is piecewise linear, so the number of items due by time t is piecewise
quadratic and can be inverted exactly. A batch is due the moment its last item is due; at
low rates, where a full batch would take longer than ``linger`` to fill, a partial batch
goes out ``linger`` after its first item was due, with whatever is due by then, so no item
waits more than ``linger`` to be offered. The last batch, at the end of the run, carries the remainder.

The schedule depends only on the profile, the share and the batch size: it is fixed before
the run starts, and what the sender manages does not move it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

from obskit.loadgen.scenario import Point

LINGER_S = 0.2


@dataclass(frozen=True)
class _Segment:
    t0: float
    t1: float
    rate0: float  # items/s at t0
    slope: float  # items/s per second
    before: float  # items due by t0

    @property
    def items(self) -> float:
        s = self.t1 - self.t0
        return self.rate0 * s + self.slope * s * s / 2


class Curve:
    """Items due by time t (from 0 to ``end``), and its inverse."""

    def __init__(self, profile: Sequence[Point], end: float, share: float = 1.0) -> None:
        knots = [(p.t, p.rate * share) for p in profile]
        self.end = end
        self.segments: list[_Segment] = []
        if not knots:
            return
        # Constant before the first point and after the last, linear in between.
        pieces: list[tuple[float, float, float, float]] = []  # t0, t1, rate at t0, rate at t1
        first_t, first_r = knots[0]
        if first_t > 0:
            pieces.append((0.0, min(first_t, end), first_r, first_r))
        for (ta, ra), (tb, rb) in zip(knots, knots[1:]):
            lo, hi = max(ta, 0.0), min(tb, end)
            if hi <= lo:
                continue
            rate_at = lambda t: ra + (rb - ra) * (t - ta) / (tb - ta)  # noqa: E731
            pieces.append((lo, hi, rate_at(lo), rate_at(hi)))
        last_t, last_r = knots[-1]
        if last_t < end:
            pieces.append((max(last_t, 0.0), end, last_r, last_r))
        before = 0.0
        for t0, t1, r0, r1 in pieces:
            seg = _Segment(t0, t1, r0, (r1 - r0) / (t1 - t0), before)
            self.segments.append(seg)
            before += seg.items
        self.total = before

    def due_by(self, t: float) -> float:
        """Items due by t."""
        for seg in self.segments:
            if t <= seg.t1:
                s = max(0.0, t - seg.t0)
                return seg.before + seg.rate0 * s + seg.slope * s * s / 2
        return self.segments[-1].before + self.segments[-1].items if self.segments else 0.0

    def time_of(self, items: float) -> float:
        """The first time at which ``items`` are due (inf if never before the end)."""
        for seg in self.segments:
            if seg.before + seg.items >= items:
                x = items - seg.before
                if x <= 0:
                    return seg.t0
                # rate0*s + slope*s^2/2 = x, solved in the form that stays exact when slope = 0
                disc = seg.rate0 * seg.rate0 + 2 * seg.slope * x
                denom = seg.rate0 + math.sqrt(max(0.0, disc))
                if denom <= 0:
                    continue
                return min(seg.t1, seg.t0 + 2 * x / denom)
        return math.inf


def batches(profile: Sequence[Point], end: float, batch: int, share: float = 1.0,
            linger: float = LINGER_S) -> Iterator[tuple[float, int]]:
    """(due time from the start, items) for every batch of the run, in order."""
    curve = Curve(profile, end, share)
    if not curve.segments:
        return
    total = int(curve.total + 1e-6)
    sent = 0
    while sent < total:
        t_full = curve.time_of(sent + batch)
        t_part = curve.time_of(sent + 1) + linger  # the oldest waiting item has waited linger
        if t_full <= t_part:
            due, n = t_full, batch
        else:
            due = min(t_part, end)
            n = min(batch, total - sent, max(1, int(curve.due_by(due) + 1e-6) - sent))
        yield due, n
        sent += n
