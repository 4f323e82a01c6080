"""Megatron log parsing, checked against the real 2 x H200 logs in tests/fixtures/megatron-logs/."""

from __future__ import annotations

import copy
import math
import pickle
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.observe import logrecords
from orchestrator.observe.logparse import follow, parse_file, parse_files, parse_lines, steady_state

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "megatron-logs"
BF16 = LOGS / "ok_bf16_alltoall_ep2.log"
RECOMPUTE = LOGS / "ok_fp8_blockwise_recompute_ep2.log"
OVERLAP = LOGS / "ok_fp8_blockwise_a2a_overlap_ep2.log"


def test_first_iteration_of_the_bf16_run_reads_every_field() -> None:
    # the line is glued behind "Number of parameters in transformer block in billions:  2.46 " in the log
    rec = parse_file(BF16).records[0]
    assert (rec.iteration, rec.train_iters, rec.consumed_samples) == (1, 12, 8)
    assert rec.elapsed_ms == 37356.2
    assert rec.tflops_per_gpu == 12.2
    assert rec.learning_rate == pytest.approx(9.846666e-05)
    assert rec.global_batch_size == 8
    assert rec.lm_loss == pytest.approx(13.15735)
    assert rec.mtp_loss == pytest.approx(13.19844)
    assert rec.load_balancing_losses == {"load_balancing_loss": 0.0, "seq_load_balancing_loss": 1.023866}
    assert set(rec.losses) == {"lm loss", "load_balancing_loss", "seq_load_balancing_loss", "mtp_1 loss"}
    assert rec.grad_norm == 6.744
    assert rec.loss_scale == 1.0
    assert (rec.skipped_iterations, rec.nan_iterations) == (0, 0)


@pytest.mark.parametrize("path, count, last_loss", [(BF16, 12, 6.858296e-02), (RECOMPUTE, 12, 6.913653e-02),
                                                     (OVERLAP, 8, 2.115794e-01)])
def test_every_iteration_is_read_in_order(path: Path, count: int, last_loss: float) -> None:
    summary = parse_file(path)
    assert [r.iteration for r in summary.records] == list(range(1, count + 1))
    assert summary.completed
    assert summary.final_lm_loss == pytest.approx(last_loss)


def test_argument_dump_gives_the_parallel_layout_and_shape() -> None:
    summary = parse_file(OVERLAP)
    a = summary.args
    assert (a["tensor_model_parallel_size"], a["pipeline_model_parallel_size"]) == (1, 1)
    assert (a["expert_model_parallel_size"], a["expert_tensor_parallel_size"]) == (2, 1)
    assert (a["global_batch_size"], a["micro_batch_size"], a["seq_length"], a["world_size"]) == (8, 1, 4096, 2)
    assert (a["num_layers"], a["hidden_size"], a["num_experts"], a["moe_router_topk"]) == (3, 7168, 16, 8)
    assert a["moe_layer_freq"] == [0, 1, 1]
    assert a["fp8_recipe"] == "blockwise" and a["fp8"] == "e4m3"
    assert a["overlap_moe_expert_parallel_comm"] is True
    assert a["q_lora_rank"] == 1536 and a["padded_vocab_size"] is None
    # names too long for dots are printed "  name  value"
    assert a["inference_dynamic_batching_cuda_graph_sizing_distribution"] == "exponential"
    assert len(a) == 815
    assert summary.padded_vocab_size == 129280
    assert summary.megatron_version == "0.19.2"
    assert parse_file(BF16).args["fp8"] is None


def test_memory_report_lines() -> None:
    summary = parse_file(BF16)
    assert [(m.rank, m.after_iterations) for m in summary.memory] == [(0, 1), (0, 2)]
    second = summary.memory[1]
    assert (second.allocated_mb, second.max_allocated_mb, second.reserved_mb, second.max_reserved_mb) == (
        55381.35, 67511.68, 69742.0, 69742.0)
    assert summary.peak_max_allocated_mb == 67511.68
    assert parse_file(OVERLAP).peak_max_allocated_mb == 58608.19


@pytest.mark.parametrize("path, tflops, iter_ms, counted", [
    (BF16, 412.8, 1101.65, 10), (RECOMPUTE, 426.9, 1065.15, 10), (OVERLAP, 457.6, 993.7, 6)])
def test_steady_state_reproduces_the_reference_figures(path: Path, tflops: float, iter_ms: float,
                                                       counted: int) -> None:
    ss = steady_state(parse_file(path).records)
    assert f"{ss.median_tflops_per_gpu:.1f}" == f"{tflops:.1f}"  # the figures of shared/gpu/README.md
    assert ss.median_iter_ms == pytest.approx(iter_ms)
    assert ss.iterations == counted
    assert [r.iteration for r in ss.warmup] == [1, 2]
    assert all(r.tflops_per_gpu is not None and r.tflops_per_gpu < 60 for r in ss.warmup)


def test_tokens_per_second_per_gpu_is_gbs_times_seq_over_time_and_world() -> None:
    records = parse_file(BF16).records
    for r in records:
        assert r.tokens_per_s_per_gpu == pytest.approx(8 * 4096 / (r.elapsed_ms / 1000 * 2))
    ss = steady_state(records)
    assert ss.tokens_per_s_per_gpu == pytest.approx(8 * 4096 / (1.10165 * 2), rel=1e-3)


def test_no_argument_dump_no_tokens() -> None:
    lines = [line for line in BF16.read_text().splitlines() if "iteration " in line and "|" in line]
    summary = parse_lines(lines)
    assert len(summary.records) == 12 and summary.args == {}
    assert all(r.tokens_per_s_per_gpu is None for r in summary.records)


@pytest.mark.parametrize("prefix", ["0: ", " 0: ", "[default0]:", "[rank1]:", "0: [rank0]:"])
def test_rank_prefixes_change_nothing(prefix: str) -> None:
    plain = parse_file(BF16)
    prefixed = parse_lines(prefix + line for line in BF16.read_text().splitlines())
    assert prefixed.records == plain.records
    assert prefixed.args == plain.args
    assert prefixed.memory == plain.memory


def test_interleaved_ranks() -> None:
    """Two ranks writing to one file: rank 1's noise between rank 0's lines changes no figure."""
    noise = "1: /usr/lib/python3.12/warnings.py:12: UserWarning: iteration-level noise | x: 1 |"
    lines = []
    for line in BF16.read_text().splitlines():
        lines += ["0: " + line, noise]
    summary = parse_lines(lines)
    assert summary.records == parse_file(BF16).records
    assert summary.args["world_size"] == 2


def test_unusual_iteration_line_takes_the_field_by_field_path() -> None:
    text = BF16.read_text().replace(" consumed samples:           24 |",
                                    " consumed samples:           24 | tokens so far: 98304 |")
    summary = parse_lines(text.splitlines())
    assert summary.records == parse_file(BF16).records


def test_restart_keeps_the_latest_line_of_a_repeated_iteration() -> None:
    lines = BF16.read_text().splitlines()
    iters = [line for line in lines if "elapsed time per iteration" in line]
    again = iters[3].replace("1099.6", "2000.0")  # iteration 4 logged again after a restart
    summary = parse_lines(lines[:-2] + [again])
    assert [r.iteration for r in summary.records] == list(range(1, 13))
    assert summary.records[3].elapsed_ms == 2000.0


def test_skipped_and_nan_iterations() -> None:
    line = (" [2026-11-28 13:30:29.975598] iteration        3/      12 | consumed samples:           24 |"
            " elapsed time per iteration (ms): 1114.6 | throughput per GPU (TFLOP/s/GPU): 408.0 |"
            " learning rate: 8.681980E-05 | global batch size:     8 | lm loss: NAN | loss scale: 1.0 |"
            " number of skipped iterations:   1 | number of nan iterations:   1 |")
    rec = parse_lines([line]).records[0]
    assert (rec.skipped_iterations, rec.nan_iterations) == (1, 1)
    assert rec.lm_loss is not None and math.isnan(rec.lm_loss)
    assert rec.grad_norm is None and rec.mtp_loss is None


@settings(max_examples=25, deadline=None)
@given(block=st.integers(min_value=64, max_value=40_000))
def test_block_boundaries_do_not_matter(block: int) -> None:
    assert parse_files([RECOMPUTE], block_bytes=block) == parse_file(RECOMPUTE)


def test_parse_files_joins_segments(tmp_path: Path) -> None:
    lines = BF16.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if "iteration        7/" in line)
    (tmp_path / "a.log").write_text("".join(lines[:cut]))
    (tmp_path / "b.log").write_text("".join(lines[cut:]))
    assert parse_files([tmp_path / "a.log", tmp_path / "b.log"]) == parse_file(BF16)


def test_follow_yields_records_as_the_file_grows(tmp_path: Path) -> None:
    lines = BF16.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if "iteration        5/" in line)
    log = tmp_path / "run.log"
    log.write_text("".join(lines[:cut]) + lines[cut][:40])  # iteration 5's line is still being written

    def writer() -> None:
        time.sleep(0.3)
        with open(log, "a") as fh:
            fh.write(lines[cut][40:])
            fh.flush()
            time.sleep(0.2)
            fh.write("".join(lines[cut + 1:]))

    thread = threading.Thread(target=writer)
    thread.start()
    got = []
    for rec in follow(log, poll_s=0.02, idle_timeout_s=1.5):
        got.append((rec.iteration, time.monotonic()))
    thread.join()
    assert [i for i, _ in got] == list(range(1, 13))
    assert got[4][1] - got[3][1] > 0.2  # iteration 5 came only once its line was complete
    assert follow_tokens(log) == pytest.approx(8 * 4096 / (1.1009 * 2))


def follow_tokens(log: Path) -> float | None:
    """tokens/s/GPU of the last record seen by follow (needs the argument dump read from the start)."""
    last = None
    for rec in follow(log, poll_s=0.01, idle_timeout_s=0.05):
        last = rec
    return last.tokens_per_s_per_gpu if last else None


def test_follow_rereads_a_truncated_file(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(BF16.read_text())
    gen = follow(log, poll_s=0.01, idle_timeout_s=0.3)
    assert [next(gen).iteration for _ in range(12)] == list(range(1, 13))
    log.write_text("".join(line for line in BF16.read_text().splitlines(keepends=True)
                           if "iteration        1/" in line))
    assert [r.iteration for r in gen] == [1]


@pytest.mark.parametrize("path", sorted(LOGS.glob("*.log")), ids=lambda p: p.name)
def test_block_path_and_line_path_give_identical_summaries(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    by_blocks = parse_file(path)
    assert by_blocks == parse_lines(text.splitlines())
    assert by_blocks == parse_files([path], block_bytes=4096)
    # a long log: blocks mostly of iteration lines (kept whole), records built hundreds at a time, column-wise
    iters = [line for line in text.splitlines(keepends=True) if "elapsed time per iteration" in line]
    long_log = tmp_path / "long.log"
    long_log.write_text(text + "".join(iters) * (30_000 // max(len(iters), 1)))
    long = parse_file(long_log)
    assert long == parse_lines(long_log.read_text().splitlines())
    assert long.records == by_blocks.records and long.memory == by_blocks.memory


_MUTATIONS = st.lists(st.tuples(st.integers(0, 11), st.integers(0, 600), st.integers(0, 3),
                                st.sampled_from([":", "|", " ", ": ", " | ", "x", "7", "nan", " loss", "\r", "\t",
                                                 " | lm loss: 2.5", " | tokens so far: 9", "iteration 3/ 9 |"])),
                      max_size=6)


@settings(max_examples=200, deadline=None)
@given(mutations=_MUTATIONS, copies=st.integers(1, 40))
def test_column_wise_build_equals_the_field_by_field_reading(mutations: list[tuple[int, int, int, str]],
                                                            copies: int) -> None:
    """Any layout, mixed or broken: lines built column by column read as the reference reads each one."""
    lines = [line for line in BF16.read_text().splitlines() if "elapsed time per iteration" in line]
    for index, at, cut, text in mutations:
        line = lines[index]
        lines[index] = line[:at] + text + line[at + cut:]
    raw = logrecords.ITERATION_LINE_RE.findall(("\n".join(lines * copies) + "\n").encode())
    reference = [rec for line in raw if (rec := logrecords._record(line, 2048.0))]
    assert repr(logrecords._build(raw, 2048.0)) == repr(reference)  # repr: NaN equals NaN


def test_records_built_on_first_use_survive_copy_and_pickle() -> None:
    summary = parse_file(BF16)
    twin, restored = copy.copy(summary), pickle.loads(pickle.dumps(summary))
    assert len(twin.records) == 12 and summary.records == twin.records == restored.records
    assert summary == twin == restored
