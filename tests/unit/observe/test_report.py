"""``orchestrator report`` on the real 2 x H200 logs: the reference figures of shared/gpu/README.md come out."""

from __future__ import annotations

from dataclasses import replace

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.report import report
from orchestrator.observe.report import (Row, ablation_step, build_report, find_logs, find_variants, order_rows,
                                         plot, table)

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "megatron-logs"
BF16 = LOGS / "ok_bf16_alltoall_ep2.log"
RECOMPUTE = LOGS / "ok_fp8_blockwise_recompute_ep2.log"
OVERLAP = LOGS / "ok_fp8_blockwise_a2a_overlap_ep2.log"

# The hand launches (these logs): BF16 alltoall 412.8; + seed flags (FP8 blockwise, recompute) 426.9;
# without recompute + EP A2A overlap 457.6 (max allocated 58608.19 MB on rank 0: Megatron's MB are MiB = 61.5 GB)
REFERENCE = {"ok_bf16_alltoall_ep2": "412.8", "ok_fp8_blockwise_recompute_ep2": "426.9",
             "ok_fp8_blockwise_a2a_overlap_ep2": "457.6"}


def test_ok_fixtures_reproduce_the_reference_figures_in_guide_order() -> None:
    rows = build_report([OVERLAP, BF16, RECOMPUTE])  # given out of order on purpose
    assert [r.name for r in rows] == ["ok_bf16_alltoall_ep2", "ok_fp8_blockwise_recompute_ep2",
                                      "ok_fp8_blockwise_a2a_overlap_ep2"]
    assert {r.name: f"{r.tflops_per_gpu:.1f}" for r in rows} == REFERENCE
    bf16, recompute, overlap = rows
    assert [r.state for r in rows] == ["completed"] * 3 and all(r.diagnosis is None for r in rows)
    assert (bf16.iterations, recompute.iterations, overlap.iterations) == ("12/12", "12/12", "8/8")
    assert overlap.iter_ms == pytest.approx(993.7)
    assert overlap.tokens_per_s_per_gpu == pytest.approx(8 * 4096 / (0.9937 * 2), rel=1e-3)
    # GB of 10^9 bytes from Megatron's MiB (its "MB"): 58608.19 MiB = 61.5 GB (not 58.6), 67511.68 MiB = 70.8 GB
    assert f"{overlap.max_allocated_gb:.1f}" == "61.5"
    assert f"{bf16.max_allocated_gb:.1f}" == "70.8"
    assert {r.gpus for r in rows} == {2}
    assert recompute.final_lm_loss == pytest.approx(6.913653e-02)
    for r in rows:  # our FLOPs formula on the argument dump agrees with Megatron's own figure
        assert r.formula_tflops_per_gpu == pytest.approx(r.tflops_per_gpu, rel=5e-3)
    assert [i for i, _ in overlap.loss_curve] == list(range(1, 9))


def test_table_shows_the_figures_and_the_failure_with_its_fix() -> None:
    text = table(build_report([BF16, LOGS / "fail_ncclep_capacity_factor.log"]))
    header, ok, failed, why = text.splitlines()
    assert header.split()[:5] == ["variant", "GPUs", "state", "iters", "TFLOP/s/GPU"]
    assert ok.split()[:9] == ["ok_bf16_alltoall_ep2", "2", "completed", "12/12", "412.8", "14872", "1101.7", "70.8",
                              "0.06858"]
    assert failed.split()[0] == "fail_ncclep_capacity_factor" and failed.split()[2:] == [
        "failed", "-", "-", "-", "-", "-", "-", "flex/ncclep", "ncclep_capacity_factor"]
    assert ok.split()[9] == "alltoall"
    assert why.startswith("fail_ncclep_capacity_factor: ") and "[log line 899]" in why
    assert why.endswith("fix: add --moe-expert-rank-capacity-factor 2.0 (generous: exceeding it traps)")


def test_every_failed_fixture_is_reported_failed_with_a_diagnosis() -> None:
    rows = build_report(sorted(LOGS.glob("fail_*.log")))
    assert all(r.state == "failed" and r.diagnosis is not None for r in rows)
    assert [r.diagnosis.name for r in rows if r.diagnosis] == [
        "ce_fusion_te_rejected", "dataset_helpers_make", "grad_accum_fusion_no_apex", "ncclep_capacity_factor",
        "ncclep_te_api_mismatch"]


def test_find_logs_layout(tmp_path: Path) -> None:
    (tmp_path / "logs" / "segment-2").mkdir(parents=True)
    for name in ("slurm-12.out", "train.log", "notes.txt", "logs/segment-2/12_1.log", "logs/12_0.err"):
        (tmp_path / name).write_text("x\n")
    assert find_logs(tmp_path) == [tmp_path / "slurm-12.out", tmp_path / "train.log", tmp_path / "logs/12_0.err",
                                   tmp_path / "logs/segment-2/12_1.log"]
    assert find_logs(BF16) == [BF16]


def test_run_directory_with_segments_is_one_row(tmp_path: Path) -> None:
    lines = BF16.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if "iteration        7/" in line)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "seg_100.log").write_text("".join(lines[:cut]))
    (tmp_path / "logs" / "seg_101.log").write_text("".join(lines[cut:]))
    [row] = build_report([tmp_path])
    assert row.name == tmp_path.name and row.state == "completed" and row.iterations == "12/12"
    assert f"{row.tflops_per_gpu:.1f}" == "412.8"


def test_sweep_run_directory_gives_one_row_per_variant_in_guide_order(tmp_path: Path) -> None:
    for task, (variant, log) in enumerate([("fp8-a2a-overlap", OVERLAP), ("bf16-alltoall", BF16),
                                           ("fp8-recompute", RECOMPUTE)]):
        task_dir = tmp_path / "tasks" / f"0_{task}"
        (task_dir / "logs").mkdir(parents=True)
        (task_dir / "record.json").write_text(json.dumps({"variant": variant, "index": task}))
        shutil.copy(log, task_dir / "logs" / f"12_{task}.log")
    assert [name for name, _ in find_variants(tmp_path)] == ["fp8-a2a-overlap", "bf16-alltoall", "fp8-recompute"]
    rows = build_report([tmp_path])
    assert [(r.name, f"{r.tflops_per_gpu:.1f}") for r in rows] == [
        ("bf16-alltoall", "412.8"), ("fp8-recompute", "426.9"), ("fp8-a2a-overlap", "457.6")]


def test_ablation_steps_of_the_proxy_sweep_names() -> None:
    names = ["bf16-alltoall", "fusions", "fp8-recompute", "fp8", "fp8-a2a-overlap", "fp8-a2a-overlap-forcebal"]
    assert [ablation_step(n) for n in names] == [0, 1, 5, 5, 9, 12]
    rows = [Row(n, [], "completed", "-", None, None, None, None, None, None, None) for n in reversed(names)]
    assert [r.name for r in order_rows(rows)] == ["bf16-alltoall", "fusions", "fp8", "fp8-recompute",
                                                  "fp8-a2a-overlap", "fp8-a2a-overlap-forcebal"]


def test_unknown_variant_names_keep_the_given_order() -> None:
    rows = [Row(n, [], "completed", "-", None, None, None, None, None, None, None) for n in ("zeta", "fp8", "bf16")]
    assert [r.name for r in order_rows(rows)] == ["zeta", "fp8", "bf16"]


def test_incomplete_and_empty_runs(tmp_path: Path) -> None:
    lines = BF16.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if "iteration        8/" in line)
    (tmp_path / "cut.log").write_text("".join(lines[:cut]))
    (tmp_path / "empty").mkdir()
    cut_row, empty_row = build_report([tmp_path / "cut.log", tmp_path / "empty"])
    assert (cut_row.state, cut_row.iterations) == ("incomplete", "7/12")
    assert f"{cut_row.tflops_per_gpu:.1f}" == "408.0"  # median of 408.0 413.5 412.5 406.6 400.3 (its 3-7)
    assert (empty_row.state, empty_row.tflops_per_gpu) == ("no logs", None)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    out = plot(build_report([BF16, RECOMPUTE, OVERLAP]), tmp_path / "report.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_modules_import_only_the_standard_library() -> None:
    code = ("import sys, orchestrator.observe.logparse, orchestrator.spec.flops, orchestrator.node.diagnose, "
            "orchestrator.observe.report; "
            "print(sorted(m for m in ('matplotlib', 'numpy', 'click', 'yaml', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"


def test_cli_json_and_plot(tmp_path: Path) -> None:
    result = CliRunner().invoke(report, [str(OVERLAP), str(BF16), str(RECOMPUTE), "--json",
                                         "--plot", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["name"], round(r["tflops_per_gpu"], 2)) for r in rows] == [
        ("ok_bf16_alltoall_ep2", 412.75), ("ok_fp8_blockwise_recompute_ep2", 426.9),
        ("ok_fp8_blockwise_a2a_overlap_ep2", 457.6)]
    assert rows[0]["diagnosis"] is None and rows[0]["state"] == "completed"
    assert (tmp_path / "r.png").stat().st_size > 20_000


def test_cli_failed_run_json_has_the_diagnosis() -> None:
    result = CliRunner().invoke(report, [str(LOGS / "fail_grad_accum_fusion_no_apex.log"), "--json"])
    assert result.exit_code == 0
    [row] = json.loads(result.output)
    assert row["state"] == "failed"
    assert row["diagnosis"]["name"] == "grad_accum_fusion_no_apex" and row["diagnosis"]["rank"] == 1
    assert "--no-gradient-accumulation-fusion" in row["diagnosis"]["fix"]


def test_cli_missing_path_is_invalid_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(report, [str(tmp_path / "nope.log")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: report: {tmp_path / 'nope.log'}: no such file or directory "
        "(fix: pass a Megatron log or a run directory)"]


def test_a_run_whose_deepep_request_fell_back_says_so_in_its_row() -> None:
    """A real run (H200, 2026-11-28): the recipe asked for flex + DeepEP, the node entry ran alltoall."""
    gpu_logs = Path(__file__).resolve().parents[2] / "fixtures" / "gpu-logs"
    rows = {r.name: r for r in build_report([gpu_logs / "ok_deepep_fallback_as_shipped_ep2.log", BF16])}
    fallback, plain = rows["ok_deepep_fallback_as_shipped_ep2"], rows["ok_bf16_alltoall_ep2"]
    assert (fallback.state, fallback.dispatcher) == ("completed", "alltoall (DeepEP fallback)")
    assert fallback.tflops_per_gpu == pytest.approx(452.95)
    assert plain.dispatcher == "alltoall"
    assert "alltoall (DeepEP fallback)" in table([fallback, plain]).splitlines()[1]


def test_plot_draws_no_bar_for_a_run_that_did_not_complete(tmp_path: Path) -> None:
    rows = build_report([OVERLAP, BF16])
    crashed = replace(rows[0], name="crashed", state="failed")   # it has a median from its first iterations
    drawn: list[float] = []
    import matplotlib.axes
    original = matplotlib.axes.Axes.bar

    def spy(self: matplotlib.axes.Axes, x: object, height: list[float], *args: object, **kwargs: object) -> object:
        drawn.extend(height)
        return original(self, x, height, *args, **kwargs)

    matplotlib.axes.Axes.bar = spy  # type: ignore[method-assign]
    try:
        plot([crashed, rows[1]], tmp_path / "r.png")
    finally:
        matplotlib.axes.Axes.bar = original  # type: ignore[method-assign]
    assert crashed.tflops_per_gpu is not None and drawn == [rows[1].tflops_per_gpu]
