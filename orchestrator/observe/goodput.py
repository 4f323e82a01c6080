"""What share of a job's GPU-hours advanced training: from its attempts (``node/retry.py``'s ``attempts.jsonl``:
start, end, GPUs, the checkpoint before and after) and its median iteration time (the report's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..node import retry


@dataclass(frozen=True)
class Goodput:
    """A job's GPU-hours by what they bought, over all its attempts and segments."""

    attempts: int
    """Attempts recorded (every start of every job of the run or task)."""
    restarts: int
    """Attempts that were requeued after a failure."""
    allocated_gpu_h: float
    """GPUs × the time from each attempt's start to its end."""
    productive_gpu_h: float
    """GPUs × the iterations that reached a kept checkpoint × the median iteration time."""
    lost_to_failures_gpu_h: float
    """What the failed attempts held beyond their productive part (their start-up included)."""
    other_gpu_h: float
    """The rest: start-up of the attempts that did not fail, checkpoint saves, evaluation, waiting."""
    goodput: float | None
    """productive / allocated (None when nothing was allocated)."""


def of_attempts(attempts: Sequence[retry.Attempt], iter_s: float) -> Goodput:
    """The goodput of these attempts at ``iter_s`` seconds per iteration."""
    def held(a: retry.Attempt) -> float:
        return max(0.0, a.ended - a.started) * a.gpus / 3600

    def productive(a: retry.Attempt) -> float:
        return max(0, (a.checkpoint_after or 0) - (a.checkpoint_before or 0)) * iter_s * a.gpus / 3600

    allocated = sum(held(a) for a in attempts)
    useful = sum(productive(a) for a in attempts)
    lost = sum(held(a) - productive(a) for a in attempts if a.status != 0)
    return Goodput(len(attempts), sum(a.action == "requeued" for a in attempts), round(allocated, 6), round(useful, 6),
                   round(lost, 6), round(allocated - useful - lost, 6),
                   round(useful / allocated, 4) if allocated > 0 else None)


def of_run(where: Path, iter_ms: float | None) -> Goodput | None:
    """The goodput of the run (or array task) directory ``where``; None without attempts or iteration time."""
    attempts = retry.read_attempts(where)
    return of_attempts(attempts, iter_ms / 1000.0) if attempts and iter_ms else None


def line(name: str, g: Goodput) -> str:
    """One line for the report's table."""
    return (f"{name}: goodput {g.goodput if g.goodput is not None else '-'}: {g.productive_gpu_h:.4g} of "
            f"{g.allocated_gpu_h:.4g} GPU-h reached a kept checkpoint; {g.lost_to_failures_gpu_h:.4g} lost to failed "
            f"attempts, {g.other_gpu_h:.4g} start-up, saves and the rest; {g.attempts} attempt(s), "
            f"{g.restarts} restart(s)")
