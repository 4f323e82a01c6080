"""The failure signatures the diagnosis knows (``node/diagnose.py`` reads logs with them): how each shows in a log,
what it means, what to change, and whether running the job again can succeed. Standard library only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ROOT, SYMPTOM = 0, 1
"""Signature tiers: a root cause; a symptom of a failure elsewhere (ranked below any Python exception)."""

Retry = Literal["transient", "deterministic"]
"""Whether running the same job again can succeed: a transient failure (network, NCCL timeout, a lost node or GPU,
preemption, an I/O hiccup, a port in use, a hang) is retried from the latest checkpoint; a deterministic one (bad
arguments, an import error, out of memory, NaN loss, an unknown cause) would fail again and is never retried."""


@dataclass(frozen=True)
class Signature:
    """One known failure: how it shows in a log, what it means, what to change."""

    name: str
    """Short identifier (``cuda_oom``, ``nccl_watchdog_timeout`` ...)."""
    needles: tuple[str, ...]
    """Literal substrings; the regex runs only on lines holding one of them."""
    regex: re.Pattern[str]
    """The pattern; its named groups fill the ``cause`` and ``fix`` templates."""
    cause: str
    """What went wrong (template; ``{where}`` is " on rank N" or "")."""
    fix: str
    """What to do about it (template)."""
    tier: int = ROOT
    """``ROOT`` or ``SYMPTOM``: a root cause wins over a Python exception, which wins over a symptom."""
    retry: Retry = "deterministic"
    """Whether the same job can succeed when run again."""
    hardware: bool = False
    """The node itself is at fault (a GPU Xid, an ECC error, a failed node): the next attempt excludes it."""


def _sig(name: str, needles: tuple[str, ...], regex: str, cause: str, fix: str, tier: int = ROOT,
         retry: Retry = "deterministic", hardware: bool = False) -> Signature:
    return Signature(name, needles, re.compile(regex), cause, fix, tier, retry, hardware)


SIGNATURES: tuple[Signature, ...] = (
    _sig("dataset_helpers_make", ("No targets specified and no makefile found", "Failed to compile the C++ dataset"),
         r"No targets specified and no makefile found|Failed to compile the C\+\+ dataset helper",
         "megatron.training runs `make` in megatron/core/datasets to build the dataset index helper{where}; the "
         "megatron-core wheel ships the helper prebuilt but no Makefile",
         "put a Makefile with a no-op target in <site-packages>/megatron/core/datasets/ "
         "(printf 'all:\\n\\t@true\\n' > Makefile)"),
    _sig("ce_fusion_te_rejected", ("cross entropy loss fusion is disabled",),
         r"Transformer Engine cross entropy loss fusion is disabled",
         "megatron-core 0.18.2 and later reject --cross-entropy-fusion-impl te (argument check{where})",
         "use --cross-entropy-fusion-impl native (or drop --cross-entropy-loss-fusion)"),
    _sig("grad_accum_fusion_no_apex", ("fused_weight_gradient_mlp_cuda",),
         r"gradient_accumulation_fusion.*fused_weight_gradient_mlp_cuda module is not found",
         "gradient accumulation fusion needs APEX's fused_weight_gradient_mlp_cuda extension, which is not "
         "installed{where}",
         "add --no-gradient-accumulation-fusion (or install APEX with --cpp_ext --cuda_ext)"),
    _sig("ncclep_capacity_factor", ("requires moe_expert_rank_capacity_factor",),
         r"The 'ncclep' backend requires moe_expert_rank_capacity_factor",
         "the flex dispatcher's ncclep backend needs a per-rank receive budget and none was set{where}",
         "add --moe-expert-rank-capacity-factor 2.0 (generous: exceeding it traps)"),
    _sig("ncclep_te_api_mismatch", ("ep_bootstrap()",),
         r"ep_bootstrap\(\) (?:missing \d+ required positional argument|got an unexpected keyword)",
         "megatron-core and Transformer Engine disagree on the NCCL-EP API (ep_bootstrap signature){where}",
         "use --moe-token-dispatcher-type alltoall (or flex with --moe-flex-dispatcher-backend deepep where DeepEP "
         "is installed), or pair megatron-core with the TE release it was built against"),
    _sig("cuda_oom", ("out of memory",),
         r"CUDA out of memory\. Tried to allocate (?P<size>[\d.]+ ?[KMGT]i?B)(?:\. GPU (?P<gpu>\d+) has a total "
         r"capaci?ty of (?P<total>[\d.]+ ?[KMGT]i?B) of which (?P<free>[\d.]+ ?(?:[KMGT]i?B|bytes)) is free)?"
         r"|CUDA error: out of memory(?P<nosize>)",
         "GPU out of memory{where} while allocating {size}",
         "lower --micro-batch-size, recompute more (--recompute-granularity selective --recompute-modules "
         "mla_up_proj mlp moe_act, or full), spread the model over more GPUs (PP/EP), or set "
         "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True if much memory is reserved but unallocated"),
    _sig("deepep_timeout", ("DeepEP timeout",),
         r"DeepEP timeout (?:for (?P<phase>dispatch|combine)\w*(?: \w+)*|check failed)[^\n]*?rank[ =]+(?P<peer>\d+)",
         "a DeepEP {phase} kernel timed out waiting for its peers{where}: a peer rank crashed or hangs, the "
         "NVLink/RDMA transport (NVSHMEM) does not deliver, or the token buffers are too small",
         "look for an earlier error on another rank; run DeepEP's tests/test_intranode.py and test_internode.py "
         "on these nodes; check NVSHMEM_* and IB settings; or fall back to --moe-token-dispatcher-type alltoall",
         retry="transient"),
    _sig("nvshmem_init", ("nvshmem", "NVSHMEM", "transports", "GPU-initiated communication", "mlx5dv_devx_uar"),
         r"nvshmem (?:detect topo|setup connections|init) failed|Unable to initialize any transports|"
         r"no active IB device that supports GPU-initiated communication|"
         r"cannot allocate mlx5dv_devx_uar|nvshmemx?_init\w*(?:\(\))? failed|NVSHMEM[^\n]*initialization failed",
         "NVSHMEM (DeepEP's inter-node transport) could not start its IBGDA/IB transport{where}",
         "check the container sees the NICs (/dev/infiniband, ibv_devinfo), the driver has PeerMappingOverride=1 "
         "for IBGDA, NVSHMEM_IB_ENABLE_IBGDA / NVSHMEM_HCA_LIST match the fabric, and the NVSHMEM build matches "
         "DeepEP's; or use --moe-token-dispatcher-type alltoall"),
    _sig("nccl_watchdog_timeout", ("Watchdog caught collective operation timeout",),
         r"(?:\[(?:PG [^\]]*)?Rank (?P<peer>\d+)\] )?Watchdog caught collective operation timeout: "
         r"WorkNCCL\(SeqNum=(?P<seq>\d+), OpType=(?P<op>\w+)[^)]*?Timeout\(ms\)=(?P<timeout>\d+)\)",
         "an NCCL {op} (SeqNum {seq}) did not complete within {timeout} ms{where}: another rank died, hangs or "
         "is far behind, or the network stalled",
         "find the rank that failed first (its own error is the cause); if none did, rerun with NCCL_DEBUG=INFO "
         "TORCH_NCCL_DUMP_ON_TIMEOUT=1; raise --distributed-timeout-minutes only for slow but healthy steps",
         SYMPTOM, "transient"),
    _sig("nccl_network", ("remote process exited", "unhandled system error", "Connection reset by peer",
                          "Connection closed by peer"),
         r"remote process exited or there was a network error|NCCL error[^\n]*unhandled system error|"
         r"Connection (?:reset|closed) by peer",
         "a peer's connection broke{where} (a peer rank died or the network dropped it)",
         "nothing to change if it passes on the next attempt; if it repeats on one node, exclude the node",
         SYMPTOM, "transient"),
    _sig("gpu_xid", ("NVRM: Xid",), r"NVRM: Xid \((?P<pci>[^)]*)\): (?P<xid>\d+)",
         "the GPU driver reported Xid {xid} ({pci}){where}: a GPU or NVLink fault",
         "the next attempt excludes the node; report it (nvidia-smi -q, dmesg) to the cluster's admins",
         retry="transient", hardware=True),
    _sig("ecc_error", ("ECC error",), r"uncorrectable ECC error",
         "an uncorrectable ECC memory error on the GPU{where}",
         "the next attempt excludes the node; report it (nvidia-smi -q -d ECC) to the cluster's admins",
         retry="transient", hardware=True),
    _sig("port_in_use", ("Address already in use", "EADDRINUSE"), r"Address already in use|EADDRINUSE",
         "the rendezvous port was taken{where} (a leftover process of an earlier job on the node)",
         "nothing to change if the next attempt starts; else set MASTER_PORT apart or clean the node",
         retry="transient"),
    _sig("io_error", ("Input/output error", "Stale file handle"), r"\[Errno (?:5|116)\] "
         r"(?:Input/output error|Stale file handle)",
         "the file system failed a read or write{where} (a storage hiccup)",
         "nothing to change if it passes on the next attempt; if it repeats, check the file system's health",
         retry="transient"),
    _sig("nan_loss", ("NaN", " nan "), r"found NaN in local grad norm|[Ll]oss is NaN|Unexpected result nan",
         "the loss or the gradient norm became NaN{where}",
         "lower --lr or raise --lr-warmup-iters, check the data, or resume from an earlier checkpoint"),
    _sig("hang", ("orchestrator: HUNG",),
         r"orchestrator: HUNG at iteration (?P<iteration>\d+) on (?P<node>[^\s:]+)",
         "no new iteration after iteration {iteration} for too long: the job hung (on {node}); stacks were saved",
         "nothing to change if the next attempt passes; the stacks in the run directory show where it hung",
         retry="transient"),
)
