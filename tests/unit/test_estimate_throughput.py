"""Step time and TFLOP/s: held-out measured runs, the published full-scale figure, and the directions each switch
must move the prediction."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.observe import logparse
from orchestrator.spec import flops
from orchestrator.spec.config import load_experiment
from orchestrator.spec import gpus
from orchestrator.estimate.calibration import FIT_SETS, FITTED, Efficiency
from orchestrator.estimate.memory import estimate_memory
from orchestrator.estimate.setup import Setup, from_experiment, from_megatron_args, with_changes
from orchestrator.estimate.throughput import estimate_step, model_shape

ROOT = Path(__file__).resolve().parent.parent.parent
HELD_OUT = ROOT / "benchmarks" / "results" / "2026-11-28-h200x4" / "logs"
H200, H100 = gpus.get("h200"), gpus.get("h100")


def guide(*overrides: str):
    return from_experiment(load_experiment("h100-eos", "deepseek-v3", list(overrides)))


@pytest.mark.parametrize("name", ["ep4-bf16-alltoall", "ep4-fp8-a2a-overlap", "smoke-1gpu", "repeat-as-shipped"])
def test_held_out_runs_within_15_percent(name: str) -> None:
    assert HELD_OUT.parent.name not in FIT_SETS
    summary = logparse.parse_file(HELD_OUT / f"{name}.log")
    measured = logparse.steady_state(summary.records).median_tflops_per_gpu
    predicted = estimate_step(from_megatron_args(summary.args, summary.padded_vocab_size), H200).tflops_per_gpu
    assert predicted == pytest.approx(measured, rel=0.15)


def test_full_scale_guide_within_15_percent_of_published_338() -> None:
    s = replace(guide(), overlap_grad_reduce=True, overlap_param_gather=True)  # as Megatron-Bridge runs it
    assert estimate_step(s, H100).tflops_per_gpu == pytest.approx(338, rel=0.15)


def test_reported_tflops_is_megatrons_formula_over_the_step() -> None:
    s = guide()
    step = estimate_step(s, H100)
    total = flops.flops_per_iteration(model_shape(s), s.gbs, s.seq)
    assert step.tflops_per_gpu == pytest.approx(total / (step.step_time_s * s.world * 1e12))
    assert model_shape(s) == replace(flops.DEEPSEEK_V3, padded_vocab_size=s.vocab)
    assert step.step_time_s == pytest.approx(sum(step.parts.values()))


def test_the_estimate_reads_the_overlap_flags_the_launch_renders() -> None:
    """parallel.overlap_grad_reduce / overlap_param_gather render --overlap-grad-reduce / --overlap-param-gather:
    the estimate sees them on as the launch passes them, and off when the recipe turns them off."""
    on, off = guide(), guide("parallel.overlap_grad_reduce=false", "parallel.overlap_param_gather=false")
    assert (on.overlap_grad_reduce, on.overlap_param_gather) == (True, True)
    assert (off.overlap_grad_reduce, off.overlap_param_gather) == (False, False)
    assert estimate_step(on, H100).parts["dp_comm"] < estimate_step(off, H100).parts["dp_comm"]


def test_switches_move_the_prediction_the_right_way() -> None:
    s = guide()
    tf = lambda x: estimate_step(x, H100).tflops_per_gpu  # noqa: E731
    assert tf(replace(s, recompute=frozenset())) > tf(s) > tf(replace(s, recompute=s.recompute | {"core_attn"}))
    assert tf(s) > tf(replace(s, a2a_overlap=False))
    assert tf(s) > tf(replace(s, overlap_grad_reduce=False))
    assert tf(s) > tf(replace(s, dispatcher="alltoall"))  # one copy per remote node beats one per expert
    assert tf(s) > tf(replace(s, fp8=False, fp8_param_gather=False))
    assert estimate_step(s, gpus.get("b200")).tflops_per_gpu > tf(s)


NEW_RUNS = ROOT / "benchmarks" / "results" / "2026-11-29-h200x2-deepep" / "runs" / "proxy-fast-20261129-191037-8ac7"
MBS_TASKS = {1: "0_3", 2: "0_1", 4: "0_0"}  # sweep variants mbs1, mbs2, mbs4-r1 (record.json of each task)


def measured_task(task: str) -> tuple[Setup, float, float]:
    """(setup, median TFLOP/s/GPU, rank 0's max allocated in GB) of one held-out sweep task."""
    summary = logparse.parse_file(next((NEW_RUNS / "tasks" / task / "logs").glob("*.log")))
    setup = from_megatron_args(summary.args, summary.padded_vocab_size)
    assert summary.peak_max_allocated_mb is not None
    return setup, logparse.steady_state(summary.records).median_tflops_per_gpu or 0.0, \
        summary.peak_max_allocated_mb * 2**20 / 1e9


def test_larger_micro_batches_raise_predicted_tflops_as_measured_and_memory_stays_valid() -> None:
    assert NEW_RUNS.parent.parent.name not in FIT_SETS
    runs = {mbs: measured_task(task) for mbs, task in MBS_TASKS.items()}
    assert [s.mbs for s, _, _ in runs.values()] == [1, 2, 4]
    predicted = [estimate_step(s, H200).tflops_per_gpu for s, _, _ in runs.values()]
    measured = [tf for _, tf, _ in runs.values()]
    assert measured[0] < measured[1] < measured[2] and predicted[0] < predicted[1] < predicted[2]
    assert predicted[2] / predicted[0] == pytest.approx(measured[2] / measured[0], rel=0.05)  # measured: +25 %
    for (s, tf, mem), pred in zip(runs.values(), predicted):
        assert pred == pytest.approx(tf, rel=0.15)
        assert estimate_memory(s).peak_allocated_gb == pytest.approx(mem, rel=0.10)


def test_the_gain_of_a_larger_micro_batch_comes_from_the_gemm_size_curve() -> None:
    s, _, _ = measured_task(MBS_TASKS[1])
    big = with_changes(s, mbs=4, gbs=4 * s.gbs)
    assert estimate_memory(big).peak_allocated_gb > estimate_memory(s).peak_allocated_gb

    def gain(eff: Efficiency) -> float:
        return estimate_step(big, H200, eff).tflops_per_gpu / estimate_step(s, H200, eff).tflops_per_gpu - 1

    assert gain(FITTED) > 0.15  # measured on this configuration: +25 %
    assert 0.0 <= gain(replace(FITTED, gemm_m_half=0.0)) < 0.05  # only the per-step costs spread over more tokens
