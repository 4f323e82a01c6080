"""Goodput from a run's attempts: what share of the GPU-hours reached a kept checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from orchestrator.node import retry
from orchestrator.observe import goodput, report


def attempt(start: float, end: float, status: int, before: int | None, after: int | None,
            action: retry.Action) -> retry.Attempt:
    return retry.Attempt("7", 0, ["n1", "n2"], 8, start, end, status, None, None, before, after, action, "", [])


# one hour on 8 GPUs that failed after saving iteration 600, then 1.5 h that finished at 1,500; 5 s per iteration
ATTEMPTS = [attempt(0, 3600, 134, None, 600, "requeued"), attempt(3600, 9000, 0, 600, 1500, "done")]


def test_goodput_counts_the_iterations_that_reached_a_kept_checkpoint() -> None:
    g = goodput.of_attempts(ATTEMPTS, iter_s=5.0)
    assert (g.attempts, g.restarts) == (2, 1)
    assert g.allocated_gpu_h == pytest.approx(8 * 2.5)
    assert g.productive_gpu_h == pytest.approx(8 * 1500 * 5 / 3600)
    assert g.lost_to_failures_gpu_h == pytest.approx(8 * (3600 - 600 * 5) / 3600)   # the failed hour's unsaved part
    assert g.other_gpu_h == pytest.approx(g.allocated_gpu_h - g.productive_gpu_h - g.lost_to_failures_gpu_h)
    assert g.goodput == pytest.approx(g.productive_gpu_h / g.allocated_gpu_h, abs=1e-4)


def test_report_shows_the_goodput_of_a_run_with_attempts(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "x_7.log").write_text(
        "".join(f" iteration {i:8d}/    1500 | elapsed time per iteration (ms): 5000.0 | lm loss: 1.0 |\n"
                for i in range(1, 6)))
    (tmp_path / retry.ATTEMPTS).write_text("".join(json.dumps(asdict(a)) + "\n" for a in ATTEMPTS))
    [row] = report.build_report([tmp_path])
    assert row.goodput == goodput.of_attempts(ATTEMPTS, 5.0)
    assert f"goodput {row.goodput.goodput}: " in report.table([row])
    assert json.loads(report.to_json([row]))[0]["goodput"]["restarts"] == 1
