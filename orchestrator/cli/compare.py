"""``orchestrator compare RUN BASELINE``: the regression gate (exit 1 on a regression beyond the tolerance)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..observe import compare as compare_mod
from .output import EXIT_FAILED, fail


@click.command("compare")
@click.argument("run", metavar="RUN")
@click.argument("baseline", metavar="BASELINE")
@click.option("--tolerance", type=float, default=2.0, show_default=True,
              help="allowed change in percent (2 = 2 %) of each figure and of every point of the loss curve")
@click.option("--first-iter", type=int, default=3, show_default=True, help="first iteration of the steady state")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of the table")
def compare(run: str, baseline: str, tolerance: float, first_iter: int, as_json: bool) -> None:
    """Compare RUN with BASELINE (run directories or Megatron logs): steady-state TFLOP/s/GPU, iteration time,
    peak memory and the loss curve point by point. Exit 0 within the tolerance, 1 on a regression."""
    if not math.isfinite(tolerance) or tolerance < 0:
        fail(f"--tolerance: {tolerance} is not a percentage (fix: a number >= 0, e.g. 2 for 2 %)")
    if first_iter < 1:
        fail(f"--first-iter: {first_iter} is below 1 (fix: pass 1 or more; 3 skips the warm-up)")
    for path in (run, baseline):
        if not Path(path).exists():
            fail(f"compare: {path}: no such file or directory (fix: pass a run directory or a Megatron log)")
    try:
        checks = compare_mod.compare(compare_mod.one_row(run, first_iter), compare_mod.one_row(baseline, first_iter),
                                     tolerance)
    except compare_mod.NotComparable as exc:
        fail(f"compare: {exc}")
    click.echo(compare_mod.to_json(checks, tolerance) if as_json else compare_mod.table(checks, tolerance))
    if any(c.regression for c in checks):
        raise SystemExit(EXIT_FAILED)
