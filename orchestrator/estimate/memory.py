"""Per-GPU peak memory: weights, gradients, optimizer state, the activations of the micro-batches in flight on each
pipeline rank (for the actual layout), and what lives outside PyTorch's allocator.

``peak_allocated_gb`` is comparable with Megatron's ``max allocated`` of the worst rank; ``device_gb`` adds the
CUDA context, NCCL's and the dispatcher's buffers, which the GPU must also hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from . import activations as act
from .params import RankParams, rank_params
from .setup import Setup, Stage

GB = 1e9
CUDA_CONTEXT_GB = 0.6
"""CUDA context and kernels' modules per process (outside the allocator)."""
NCCL_GB = 1.5
"""NCCL communicators' buffers (TP, DP, EP, PP groups), outside the allocator."""
DEEPEP_BUFFER_GB = (1.0, 3.0)
"""DeepEP's NVLink buffer, and NVLink + RDMA buffers when EP spans nodes (outside the allocator)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of the worst GPU, by component."""

    peak_allocated_gb: float
    """Comparable with Megatron's ``max allocated`` (PyTorch allocator only)."""
    device_gb: float
    """``peak_allocated_gb`` plus CUDA context, NCCL and dispatcher buffers."""
    worst_rank: int
    """Pipeline rank with the highest peak."""
    breakdown: dict[str, float]
    """GB by component on the worst rank (static state, activations by term, transients, outside-allocator)."""
    per_rank_gb: tuple[float, ...]
    """``peak_allocated_gb`` of every pipeline rank."""
    inflight: tuple[int, ...]
    """Micro-batches in flight per virtual stage of the worst rank at its peak (chunk 0 first)."""


def weight_bytes(s: Setup, p: RankParams) -> float:
    """Model weights: bf16, or FP8 row- and column-wise copies (2 bytes) with FP8 param gather; with FP8 compute
    but bf16 weights, TE's cached FP8 copy adds 2 bytes per linear weight."""
    fp8_cache = 2.0 * (p.total - p.embedding) if (s.fp8 and not s.fp8_param_gather) else 0.0
    return 2.0 * p.total + fp8_cache


def grad_bytes(s: Setup, p: RankParams) -> float:
    """Main gradients: fp32 unless reduced in bf16 (the whole buffer, not sharded)."""
    return (2.0 if s.grad_reduce_bf16 else 4.0) * p.total


def optimizer_bytes(s: Setup, p: RankParams) -> float:
    """Main weights + Adam moments (fp32, or bf16 with the precision-aware optimizer), sharded by the distributed
    optimizer over DP x CP (dense) and expert DP (experts). The main weights are fp32 (4 bytes), except with the
    precision-aware optimizer and no FP8 recipe: megatron-core's ``store_param_remainders`` (on by default) keeps
    only the 16 bits of each fp32 main weight that its bf16 parameter does not hold (2 bytes; measured on 1 x
    H200: BF16 runs 2 bytes per parameter below the FP8 blockwise runs, MBS-independent)."""
    main = 2.0 if (s.bf16_moments and not s.fp8) else 4.0
    per = main + (4.0 if s.bf16_moments else 8.0)
    if not s.dist_opt:
        return per * p.total
    return per * (p.dense / (s.dp * s.cp) + p.expert / s.edp)


def inflight(s: Setup, rank: int) -> tuple[int, ...]:
    """Micro-batches whose activations are held per virtual stage at the rank's peak: 1F1B holds PP - rank;
    interleaved 1F1B holds its warm-up + 1 forward units in schedule order (groups of PP micro-batches per chunk);
    EP A2A overlap runs one more forward before the first backward."""
    return _inflight(s.pp, s.vpp, s.microbatches, rank, 1 if (s.a2a_overlap and s.pp > 1) else 0)


@lru_cache(maxsize=65536)
def _inflight(pp: int, vpp: int, microbatches: int, rank: int, extra: int) -> tuple[int, ...]:
    if pp == 1:
        return (1,)
    if vpp == 1:
        return (min(pp - rank + extra, microbatches),)
    warmup = (pp - rank - 1) * 2 + (vpp - 1) * pp
    units = min(warmup + 1 + extra, microbatches * vpp)
    counts = [0] * vpp
    for k in range(units):
        counts[(k // pp) % vpp] += 1
    return tuple(counts)


def stage_activation(s: Setup, st: Stage) -> float:
    """Bytes one micro-batch leaves in one virtual stage."""
    dense, moe, mtp_extra, loss = act.layer_totals(s)
    mtp_moe = s.layers > s.first_dense
    layers = st.dense * dense + st.moe * moe + st.mtp * ((moe if mtp_moe else dense) + mtp_extra)
    return layers + (loss if st.loss else 0.0)


def _transient(s: Setup, stages: tuple[Stage, ...]) -> float:
    has_moe = any(st.moe or st.mtp for st in stages)
    work = act.layer_transient(s, has_moe)
    if s.pp == 1 and s.a2a_overlap:  # the next micro-batch's layer runs beside this one's backward
        dense, moe, _, _ = act.layer_totals(s)
        work += moe if has_moe else dense
    return max(work, act.logits_transient(s) if any(st.loss for st in stages) else 0.0)


def rank_peak(s: Setup, rank: int) -> float:
    """Peak allocated bytes of one pipeline rank."""
    p = rank_params(s, rank)
    stages = s.rank_stages(rank)
    static = weight_bytes(s, p) + grad_bytes(s, p) + optimizer_bytes(s, p)
    acts = sum(n * stage_activation(s, st) for n, st in zip(inflight(s, rank), stages))
    return static + acts + _transient(s, stages)


def outside_allocator(s: Setup) -> dict[str, float]:
    """GB the GPU holds outside PyTorch's allocator."""
    out = {"cuda_context": CUDA_CONTEXT_GB, "nccl_buffers": NCCL_GB}
    if s.dispatcher == "deepep":
        out["deepep_buffers"] = DEEPEP_BUFFER_GB[s.ep * s.etp * s.tp > s.gpus_per_node]
    return out


def _breakdown(s: Setup, rank: int) -> dict[str, float]:
    p = rank_params(s, rank)
    stages = s.rank_stages(rank)
    counts = inflight(s, rank)
    out = {"parameters": weight_bytes(s, p), "gradients": grad_bytes(s, p), "optimizer_state": optimizer_bytes(s, p)}
    mtp_moe = s.layers > s.first_dense
    for n, st in zip(counts, stages):
        for kind, layers, terms in (("dense_layer", st.dense + (0 if mtp_moe else st.mtp), act.dense_mlp_terms(s)),
                                    ("moe_layer", st.moe + (st.mtp if mtp_moe else 0), act.moe_terms(s))):
            for name, value in {**act.attention_terms(s), **terms}.items():
                out[f"activations.{kind}.{name}"] = out.get(f"activations.{kind}.{name}", 0.0) + n * layers * value
        for name, value in (act.mtp_extra_terms(s).items() if st.mtp else ()):
            out[f"activations.{name}"] = out.get(f"activations.{name}", 0.0) + n * st.mtp * value
        for name, value in (act.loss_terms(s).items() if st.loss else ()):
            out[f"activations.{name}"] = out.get(f"activations.{name}", 0.0) + n * value
    out["transient"] = _transient(s, stages)
    return {k: v / GB for k, v in out.items() if v}


def peaks(s: Setup) -> tuple[float, float]:
    """(allocator peak, device total) in GB of the worst rank, without the breakdown (the planner's fast path)."""
    allocated = max(rank_peak(s, r) for r in range(s.pp)) / GB
    return allocated, allocated + sum(outside_allocator(s).values())


def estimate_memory(s: Setup) -> MemoryEstimate:
    """Peak memory of every pipeline rank; the breakdown of the worst one."""
    peaks = tuple(rank_peak(s, r) / GB for r in range(s.pp))
    worst = max(range(s.pp), key=lambda r: peaks[r])
    breakdown = _breakdown(s, worst)
    outside = outside_allocator(s)
    breakdown.update({f"outside_allocator.{k}": v for k, v in outside.items()})
    return MemoryEstimate(peaks[worst], peaks[worst] + sum(outside.values()), worst, breakdown, peaks,
                          inflight(s, worst))
