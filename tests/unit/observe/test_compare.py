"""``orchestrator compare RUN BASELINE``: the regression gate, on the GPU logs committed under benchmarks/results."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import main

RESULTS = Path(__file__).parents[3] / "benchmarks" / "results"
ONE_GPU = RESULTS / "2026-12-02-h200-one-gpu" / "runs"
TOOLKIT = next((ONE_GPU / "compare-runs").glob("*-667f"))          # 568.95 TFLOP/s/GPU
TORCHRUN = ONE_GPU / "torchrun" / "torchrun-B10.log"               # 564.15: 0.84 % slower, the same loss
ABLATION = RESULTS / "2026-11-28-h200x2" / "logs"


def run(*args: str) -> tuple[int, str, str]:
    out = CliRunner().invoke(main, ["compare", *map(str, args)])
    return out.exit_code, out.stdout, out.stderr


def test_a_run_against_itself_passes() -> None:
    code, stdout, _ = run(TOOLKIT, TOOLKIT, "--tolerance", "0")
    assert code == 0 and stdout.strip().endswith("no regression beyond 0 %")
    assert stdout.count("+0.00 %") == 4


def test_a_slower_run_fails_beyond_the_tolerance_and_passes_within_it() -> None:
    code, stdout, _ = run(TORCHRUN, TOOLKIT, "--tolerance", "0.5")
    assert code == 1 and "regression beyond 0.5 %: TFLOP/s/GPU, iteration ms" in stdout
    assert "-0.84 %" in stdout
    assert run(TORCHRUN, TOOLKIT, "--tolerance", "2")[0] == 0
    assert run(TOOLKIT, TORCHRUN, "--tolerance", "0.5")[0] == 0      # faster than its baseline: no regression


def test_a_different_loss_curve_fails_even_when_faster() -> None:
    """FP8 against BF16 fusions (same seed, mock data): 4.6 % faster, but the loss differs by 1.7 % at iteration 11."""
    code, stdout, _ = run(ABLATION / "ablation-fp8.log", ABLATION / "ablation-fusions.log", "--tolerance", "1", "--json")
    assert code == 1
    result = json.loads(stdout)
    by = {c["metric"]: c for c in result["checks"]}
    assert result["regression"] and by["lm loss (point by point)"]["regression"]
    assert not by["TFLOP/s/GPU"]["regression"] and by["TFLOP/s/GPU"]["change_pct"] > 4
    assert by["lm loss (point by point)"]["note"] == "largest at iteration 11 of 12 compared"


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("no iterations here\n")
    for args, start in [((TOOLKIT, tmp_path / "nope"), "error: compare: "),
                        ((TOOLKIT, empty), "error: compare: "),
                        ((TOOLKIT, TOOLKIT, "--tolerance", "nan"), "error: --tolerance: nan"),
                        ((RESULTS / "2026-11-29-h200x2-deepep" / "runs" /
                          next(p.name for p in (RESULTS / "2026-11-29-h200x2-deepep" / "runs").iterdir()), TOOLKIT),
                         "error: compare: ")]:
        code, stdout, stderr = run(*args)
        assert code == 2 and stderr.startswith(start) and len(stderr.strip().splitlines()) == 1, stderr
