"""Failure signatures: the real failed runs in tests/fixtures/megatron-logs/, and snippets written the way torch,
NCCL, DeepEP and NVSHMEM print their errors (for failures no fixture has)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.node.diagnose import diagnose_file, diagnose_lines, diagnose_slurm_state

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "megatron-logs"


@pytest.mark.parametrize("log, name, rank, evidence, fix", [
    ("fail_dataset_helpers_make.log", "dataset_helpers_make", 0,
     "make: *** No targets specified and no makefile found.  Stop.", "Makefile"),
    ("fail_ce_fusion_te_assert.log", "ce_fusion_te_rejected", 0,
     "AssertionError: Transformer Engine cross entropy loss fusion is disabled due to stability issues.",
     "--cross-entropy-fusion-impl native"),
    ("fail_grad_accum_fusion_no_apex.log", "grad_accum_fusion_no_apex", 1,
     "RuntimeError: ColumnParallelLinear was called with gradient_accumulation_fusion set to True",
     "--no-gradient-accumulation-fusion"),
    ("fail_ncclep_capacity_factor.log", "ncclep_capacity_factor", 0,
     "ValueError: The 'ncclep' backend requires moe_expert_rank_capacity_factor to be set",
     "--moe-expert-rank-capacity-factor 2.0"),
    ("fail_ncclep_te_api_mismatch.log", "ncclep_te_api_mismatch", 0,
     "ep_bootstrap() missing 1 required positional argument: 'num_topk'", "--moe-token-dispatcher-type alltoall"),
])
def test_every_failed_fixture_gets_its_cause_and_fix(log: str, name: str, rank: int, evidence: str,
                                                     fix: str) -> None:
    d = diagnose_file(LOGS / log)
    assert d is not None
    assert d.name == name
    assert d.rank == rank
    assert evidence in d.evidence
    assert fix in d.fix
    assert d.line is not None and evidence.split("(")[0][:40] in (LOGS / log).read_text().splitlines()[d.line - 1]


@pytest.mark.parametrize("log", sorted(LOGS.glob("ok_*.log")), ids=lambda p: p.stem)
def test_successful_runs_have_no_diagnosis(log: Path) -> None:
    assert diagnose_file(log) is None


@settings(max_examples=20, deadline=None)
@given(block=st.integers(min_value=50, max_value=30_000),
       log=st.sampled_from(sorted(LOGS.glob("fail_*.log"))))
def test_file_and_lines_agree_whatever_the_block_size(block: int, log: Path) -> None:
    assert diagnose_file(log, block_bytes=block) == diagnose_lines(log.read_text().splitlines())


def test_srun_label_prefixes_keep_the_rank() -> None:
    lines = [f"{1 if '[rank1]' in line else 0}: {line}"
             for line in (LOGS / "fail_grad_accum_fusion_no_apex.log").read_text().splitlines()]
    d = diagnose_lines(lines)
    assert d is not None and (d.name, d.rank) == ("grad_accum_fusion_no_apex", 1)


OOM = """\
[rank3]: Traceback (most recent call last):
[rank3]:   File "/opt/Megatron-LM/pretrain_gpt.py", line 523, in <module>
[rank3]:     pretrain(
[rank3]:   File "/usr/local/lib/python3.12/dist-packages/megatron/core/transformer/moe/experts.py", line 301, \
in forward
[rank3]:     intermediate_parallel = self.activation_func(fc1_output)
[rank3]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.50 GiB. GPU 3 has a total capacity of \
139.81 GiB of which 1.02 GiB is free. Including non-PyTorch memory, this process has 138.77 GiB memory in use. \
Of the allocated memory 131.20 GiB is allocated by PyTorch, and 5.95 GiB is reserved by PyTorch but unallocated. \
If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid \
fragmentation.  See documentation for Memory Management  \
(https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)
"""

WATCHDOG = """\
[rank0]:[E1128 14:07:08.408271257 ProcessGroupNCCL.cpp:632] [Rank 0] Watchdog caught collective operation timeout: \
WorkNCCL(SeqNum=1580, OpType=ALLREDUCE, NumelIn=466119168, NumelOut=466119168, Timeout(ms)=600000) ran for 600060 \
milliseconds before timing out.
[rank0]:[E1128 14:07:08.465150152 ProcessGroupNCCL.cpp:1664] [PG 1 Rank 0] Exception (either an error or timeout) \
detected by watchdog at work: 1580, last enqueued NCCL work: 1582, last completed NCCL work: 1579.
[rank2]:[E1128 14:07:08.432379535 ProcessGroupNCCL.cpp:632] [Rank 2] Watchdog caught collective operation timeout: \
WorkNCCL(SeqNum=1580, OpType=ALLREDUCE, NumelIn=466119168, NumelOut=466119168, Timeout(ms)=600000) ran for 600067 \
milliseconds before timing out.
"""


def test_cuda_oom_names_rank_and_allocation() -> None:
    d = diagnose_lines(OOM.splitlines())
    assert d is not None and d.name == "cuda_oom"
    assert d.rank == 3
    assert "3.50 GiB" in d.cause and "rank 3" in d.cause and "139.81 GiB total" in d.cause
    assert d.evidence.startswith("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.50 GiB")
    assert "--micro-batch-size" in d.fix and "recompute" in d.fix


def test_legacy_oom_message_and_unknown_rank() -> None:
    d = diagnose_lines(["RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 79.15 GiB total "
                        "capacity; 77.90 GiB already allocated; 3.81 MiB free; 78.30 GiB reserved in total by "
                        "PyTorch)"])
    assert d is not None and d.name == "cuda_oom" and d.rank is None
    assert "20.00 MiB" in d.cause


def test_oom_beats_the_watchdog_timeouts_it_causes() -> None:
    d = diagnose_lines((WATCHDOG + OOM).splitlines())  # the other ranks' timeouts even printed first
    assert d is not None and (d.name, d.rank) == ("cuda_oom", 3)


def test_nccl_watchdog_timeout_alone() -> None:
    d = diagnose_lines(WATCHDOG.splitlines())
    assert d is not None and d.name == "nccl_watchdog_timeout"
    assert d.rank == 0 and d.line == 1
    assert "ALLREDUCE" in d.cause and "1580" in d.cause and "600000 ms" in d.cause
    assert "NCCL_DEBUG=INFO" in d.fix


def test_a_python_exception_beats_the_watchdog_timeouts_after_it() -> None:
    crash = ["[rank5]: Traceback (most recent call last):",
             '[rank5]:   File "/opt/Megatron-LM/megatron/core/datasets/gpt_dataset.py", line 712, in __getitem__',
             "[rank5]:     sample = self.dataset[idx]",
             "[rank5]: IndexError: index 1048576 is out of bounds for axis 0 with size 1048576"]
    d = diagnose_lines(crash + WATCHDOG.splitlines())
    assert d is not None and d.name == "python_exception"
    assert d.rank == 5 and d.evidence.startswith("IndexError: index 1048576")


def test_chained_exception_leads_with_the_first_one_and_names_the_last() -> None:
    lines = ["[rank1]: Traceback (most recent call last):",
             '[rank1]:   File "train.py", line 3, in step',
             "[rank1]: KeyError: 'tokens'",
             "[rank1]: ",
             "[rank1]: During handling of the above exception, another exception occurred:",
             "[rank1]: ",
             "[rank1]: Traceback (most recent call last):",
             '[rank1]:   File "train.py", line 9, in main',
             "[rank1]: RuntimeError: bad batch at iteration 1200",
             "[rank0]: Traceback (most recent call last):",
             '[rank0]:   File "train.py", line 9, in main',
             "[rank0]: RuntimeError: peer rank 1 went away"]
    d = diagnose_lines(lines)
    assert d is not None and (d.name, d.rank) == ("python_exception", 1)
    assert d.evidence == "KeyError: 'tokens'" and d.line == 3
    assert "KeyError: 'tokens'" in d.cause and "the chain ends in: RuntimeError: bad batch at iteration 1200" in d.cause


def test_cuda_graph_capture_failure_on_h200_names_the_capture_error_not_its_aftermath() -> None:
    """A real run (2 x H200, 2026-11-28): TE CUDA graphs of the attention together with EP A2A overlap. The first
    exception is the cause; capture_end's "previous error during capture" only follows from it."""
    d = diagnose_file(Path(__file__).resolve().parents[2] / "fixtures" / "gpu-logs" /
                      "fail_cudagraph_a2a_overlap_capture.log")
    assert d is not None and (d.name, d.rank) == ("python_exception", 1)
    assert d.evidence.startswith("torch.AcceleratorError: CUDA error: dependency created on uncaptured work")
    assert "the chain ends in: torch.AcceleratorError: CUDA error: operation failed due to a previous error" in d.cause


DEEPEP = """\
DeepEP timeout for dispatch receivers, rank 5, responsible_channel = 3, tokens remained: 112
DeepEP timeout for dispatch receivers, rank 5, responsible_channel = 7, tokens remained: 96
[rank5]: RuntimeError: CUDA error: unspecified launch failure
"""


def test_deepep_dispatch_timeout() -> None:
    d = diagnose_lines(DEEPEP.splitlines())
    assert d is not None and d.name == "deepep_timeout"
    assert d.rank == 5 and "dispatch" in d.cause and d.line == 1
    assert "alltoall" in d.fix


def test_deepep_combine_timeout() -> None:
    d = diagnose_lines(["2: DeepEP timeout for combine senders, rank 2, responsible_channel = 11"])
    assert d is not None and d.name == "deepep_timeout" and d.rank == 2 and "combine" in d.cause


NVSHMEM = """\
WARN: init failed for remote transport: ibrc
/workspace/nvshmem_src/src/host/transport/transport.cpp:nvshmemi_transport_init:275: init failed for transport: IBGDA
/workspace/nvshmem_src/src/host/transport/transport.cpp:nvshmemi_transport_init:287: Unable to initialize any \
transports. returning error.
/workspace/nvshmem_src/src/host/init/init.cu:989: non-zero status: 7 nvshmem detect topo failed
"""


def test_nvshmem_ibgda_init_failure() -> None:
    d = diagnose_lines(NVSHMEM.splitlines())
    assert d is not None and d.name == "nvshmem_init"
    assert "Unable to initialize any transports" in d.evidence and d.line == 3
    assert "IBGDA" in d.cause and "PeerMappingOverride" in d.fix


def test_launcher_summary_when_no_rank_printed_an_error() -> None:
    lines = ["W1128 13:27:29.058000 1448 torch/distributed/elastic/multiprocessing/api.py:1012] Sending process "
             "1489 closing signal SIGTERM",
             "Root Cause (first observed failure):", "[0]:", "  time      : 2026-11-28_13:27:29",
             "  host      : node7", "  rank      : 6 (local_rank: 6)", "  exitcode  : -9 (pid: 1488)",
             "  error_file: <N/A>", "============================================================"]
    d = diagnose_lines(lines)
    assert d is not None and d.name == "rank_exit" and d.rank == 6
    assert "SIGKILL" in d.cause


def test_a_clean_log_has_no_diagnosis() -> None:
    assert diagnose_lines(["training ...", "[after training is done] datetime: 2026-11-28 13:38:58"]) is None


@pytest.mark.parametrize("state, exit_code, name, words", [
    ("TIMEOUT", "0:0", "slurm_timeout", "time limit"),
    ("PREEMPTED", "0:0", "slurm_preempted", "preempted"),
    ("NODE_FAIL", "0:0", "slurm_node_fail", "node"),
    ("OUT_OF_MEMORY", "0:125", "slurm_out_of_memory", "host (CPU) memory"),
    ("CANCELLED by 1000", "0:15", "slurm_cancelled", "cancelled (scancel) by 1000"),
    ("CANCELLED+", None, "slurm_cancelled", "cancelled"),
    ("FAILED", "1:0", "slurm_failed", "exited with code 1"),
    ("FAILED", "0:9", "slurm_failed", "killed by signal 9"),
])
def test_slurm_end_states(state: str, exit_code: str | None, name: str, words: str) -> None:
    d = diagnose_slurm_state(state, exit_code)
    assert d is not None and d.name == name
    assert words in d.cause
    assert d.fix and state.split()[0] in d.evidence


@pytest.mark.parametrize("state", ["COMPLETED", "RUNNING", "PENDING", ""])
def test_slurm_states_that_are_not_failures(state: str) -> None:
    assert diagnose_slurm_state(state, "0:0") is None


def test_a_requeued_job_is_diagnosed_by_its_newest_attempt(tmp_path: Path) -> None:
    """A requeued job appends to its log: the earlier attempt's failure was retried, the newest one's is the story
    (else a recovered run reads as failed, and a retried one is retried for the first attempt's cause)."""
    timeout = ("[rank1]:[E1202 ProcessGroupNCCL.cpp:632] [Rank 1] Watchdog caught collective operation timeout: "
               "WorkNCCL(SeqNum=9, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600042 "
               "milliseconds before timing out.\n")
    first = "orchestrator: job 5 on n[1-2] (restart 0)\n" + timeout
    log = tmp_path / "job_5.log"
    log.write_text(first + "orchestrator: job 5 on n[1-2] (restart 1)\n iteration 30/ 30 | lm loss: 1.0 |\n")
    assert diagnose_file(log) is None
    log.write_text(first + "orchestrator: job 5 on n[1-2] (restart 1)\nTraceback (most recent call last):\n"
                   "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
    for block in (8, 64, 4 << 20):                     # the attempt line found in any block, line numbers kept
        found = diagnose_file(log, block_bytes=block)
        assert found is not None and (found.name, found.line, found.retry) == ("cuda_oom", 5, "deterministic")
    (tmp_path / "plain.log").write_text(timeout)      # a log without attempt lines: the whole of it
    plain = diagnose_file(tmp_path / "plain.log")
    assert plain is not None and plain.name == "nccl_watchdog_timeout"
