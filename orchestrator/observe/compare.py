"""A run against a baseline: steady-state TFLOP/s/GPU, iteration time, peak memory and the loss curve, each within
a tolerance (in percent) or a regression. The gate for an upgrade of Megatron, Transformer Engine or the container:
same configuration, seed and data, so the loss curves must agree point by point.

The figures are ``report``'s (one row per run: the medians over iterations >= ``first_iter``, the peak of Megatron's
memory lines, the (iteration, lm loss) pairs).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Literal

from . import report, tables

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class Metric:
    """One figure compared."""

    name: str
    """As the table shows it."""
    better: Direction
    """Which way is an improvement."""


METRICS: dict[str, Metric] = {
    "tflops_per_gpu": Metric("TFLOP/s/GPU", "higher"),
    "iter_ms": Metric("iteration ms", "lower"),
    "max_allocated_gb": Metric("max allocated GB", "lower"),
}
"""The ``report.Row`` fields compared, and which way is better."""


@dataclass(frozen=True)
class Check:
    """One line of the comparison."""

    metric: str
    baseline: float | None
    run: float | None
    change_pct: float | None
    """(run - baseline) / baseline in percent; for the loss, the largest point-by-point difference."""
    regression: bool
    note: str = ""


class NotComparable(ValueError):
    """An input that is not one run with iterations (a sweep, a log without iteration lines)."""


def one_row(path: str | os.PathLike[str], first_iter: int) -> report.Row:
    """``report``'s row of one run or log; NotComparable for a sweep or a run without iterations."""
    rows = report.build_report([path], first_iter)
    if len(rows) != 1:
        raise NotComparable(f"{path} holds {len(rows)} runs (a sweep?): compare one task directory or log")
    if not rows[0].loss_curve and rows[0].tflops_per_gpu is None:
        raise NotComparable(f"{path}: no iteration lines in its logs ({rows[0].state})")
    return rows[0]


def _figure(name: str, base: float | None, run: float | None, tolerance_pct: float) -> Check:
    metric = METRICS[name]
    if base is None or run is None or base == 0:
        return Check(metric.name, base, run, None, False, "not in both runs: not compared")
    change = (run - base) / base * 100.0
    worse = -change if metric.better == "higher" else change
    return Check(metric.name, base, run, change, worse > tolerance_pct)


def _loss(base: report.Row, run: report.Row, tolerance_pct: float) -> Check:
    """Point by point over the iterations both runs logged: the largest relative difference of lm loss."""
    theirs = dict(base.loss_curve)
    common = [(it, theirs[it], loss) for it, loss in run.loss_curve if it in theirs and theirs[it]]
    if not common:
        return Check("lm loss (point by point)", None, None, None, False, "no iteration in both runs")
    it, was, now = max(common, key=lambda t: abs(t[2] - t[1]) / abs(t[1]))
    change = (now - was) / abs(was) * 100.0
    return Check("lm loss (point by point)", was, now, change, abs(change) > tolerance_pct,
                 f"largest at iteration {it} of {len(common)} compared")


def compare(run: report.Row, base: report.Row, tolerance_pct: float) -> list[Check]:
    """Every check of ``run`` against ``base``."""
    checks = [_figure(name, getattr(base, name), getattr(run, name), tolerance_pct) for name in METRICS]
    return [*checks, _loss(base, run, tolerance_pct)]


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(checks: list[Check], tolerance_pct: float) -> str:
    """The comparison as a table, then the verdict line."""
    cells = [[c.metric, _fmt(c.baseline, ".5g"), _fmt(c.run, ".5g"),
              "-" if c.change_pct is None else f"{c.change_pct:+.2f} %", "REGRESSION" if c.regression else "ok",
              c.note] for c in checks]
    lines = [tables.table(("metric", "baseline", "run", "change", "verdict", "note"), cells, right={1, 2, 3})]
    bad = [c.metric for c in checks if c.regression]
    lines.append(f"regression beyond {tolerance_pct:g} %: {', '.join(bad)}" if bad
                 else f"no regression beyond {tolerance_pct:g} %")
    return "\n".join(lines)


def to_json(checks: list[Check], tolerance_pct: float) -> str:
    return json.dumps({"tolerance_pct": tolerance_pct, "regression": any(c.regression for c in checks),
                       "checks": [asdict(c) for c in checks]}, indent=2)
