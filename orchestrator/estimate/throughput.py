"""Step time and Megatron's reported TFLOP/s/GPU.

One micro-batch on one pipeline rank costs its GEMMs (at the achieved fraction of the BF16 or FP8 peak, lower for
GEMMs of few token rows: a small micro-batch amortises less of each GEMM's weight-sized fixed cost), fused
attention, element-wise kernels (bytes at memory bandwidth), recomputed forwards, the TP/SP collectives and the
exposed part of the EP all-to-all. A step is ``(M + (PP - 1) / VPP)`` times the slowest rank's micro-batch
(1F1B's bubble), plus the exposed DP gradient reduce / parameter gather and the optimizer's memory traffic.
The reported TFLOP/s/GPU is ``flops.flops_per_iteration`` (Megatron's formula, which counts no recompute) over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..spec import flops
from . import activations as act
from .calibration import FITTED, Efficiency
from ..spec.gpus import GpuSpec
from .params import rank_params
from .setup import Setup, Stage

_FB = 6.0  # forward + backward FLOPs per multiply-add of a weight and a token
DEEPEP_RDMA_EFFICIENCY = 43.0 / 50.0
"""Fixed, not fitted (no multi-node run to fit it on): DeepEP's README measures 43-58 GB/s of RDMA 'bottleneck
bandwidth' for internode dispatch/combine on 400 Gb/s (~50 GB/s) CX7 NICs; the lowest figure is used."""


@dataclass(frozen=True)
class StepEstimate:
    """Predicted step time and throughput, with where the time goes (seconds per step on the slowest rank)."""

    step_time_s: float
    """One optimizer step."""
    tflops_per_gpu: float
    """Megatron's ``throughput per GPU (TFLOP/s/GPU)``."""
    tokens_per_s_per_gpu: float
    """GBS x seq / step time / GPUs."""
    parts: dict[str, float]
    """Seconds per step by cause: gemm, attention, elementwise, recompute, tp_comm (TP/SP collectives and the
    exposed part of CP's ring), ep_a2a, layer_fixed, pp_bubble, dp_comm, optimizer."""


def model_shape(s: Setup) -> flops.ModelShape:
    """The flops module's shape of this model."""
    return flops.ModelShape(
        num_layers=s.layers, hidden_size=s.hidden, ffn_hidden_size=s.ffn, num_attention_heads=s.heads,
        padded_vocab_size=s.vocab, swiglu=True, multi_latent_attention=True, q_lora_rank=s.q_lora,
        kv_lora_rank=s.kv_lora, qk_head_dim=s.qk_dim, qk_pos_emb_head_dim=s.rope_dim, v_head_dim=s.v_dim,
        num_experts=s.experts or None, moe_layer_freq=(0,) * s.first_dense + (1,) * (s.layers - s.first_dense),
        moe_router_topk=s.topk, moe_ffn_hidden_size=s.expert_ffn,
        moe_shared_expert_intermediate_size=s.shared_ffn or None, mtp_num_layers=s.mtp or None)


@dataclass(frozen=True)
class _Costs:
    """Seconds of one micro-batch of one layer kind on one GPU, by cause."""

    gemm: float
    attention: float
    elementwise: float
    recompute: float
    tp_comm: float
    a2a: float

    def total(self, eff: Efficiency, overlap: bool) -> float:
        compute = self.gemm + self.attention + self.elementwise + self.recompute
        return compute + self.tp_comm + self.exposed_a2a(eff, overlap, compute)

    def exposed_a2a(self, eff: Efficiency, overlap: bool, compute: float) -> float:
        if not overlap:
            return self.a2a
        return max(self.a2a * (1.0 - eff.a2a_hidden), self.a2a - compute)


def _rates(s: Setup, gpu: GpuSpec, eff: Efficiency, rows: float = math.inf) -> tuple[float, float]:
    """(FLOP/s of the TE linears, FLOP/s of BF16 GEMMs and attention) for GEMMs of ``rows`` token rows (M)."""
    size = 1.0 if math.isinf(rows) else rows / (rows + eff.gemm_m_half)
    bf16 = gpu.bf16_tflops * 1e12 * eff.gemm_bf16 * size
    return (gpu.fp8_tflops * 1e12 * eff.gemm_fp8 * size if s.fp8 and gpu.fp8_tflops else bf16), bf16


def expert_rows(s: Setup) -> float:
    """Rows of one expert's GEMM per micro-batch (balanced routing): the rank's tokens x top-k, spread over its
    local experts (a grouped GEMM runs one GEMM per expert, so its efficiency follows each expert's rows: EP1
    with 16 local experts gives each half the rows EP2 with 8 does)."""
    local = max(1, s.experts // (s.ep * s.etp)) if s.experts else 1
    return s.mbs * s.seq / s.cp / s.tp * s.etp * s.topk / local


def _attn_linear(s: Setup) -> float:
    qk = s.qk_dim + s.rope_dim
    q = s.hidden * s.heads * qk if s.q_lora is None else s.q_lora * (s.hidden + s.heads * qk)
    return q + s.kv_lora * (s.hidden + s.heads * (s.qk_dim + s.v_dim)) + s.hidden * s.rope_dim \
        + s.heads * s.v_dim * s.hidden


def _tp_comm(s: Setup, gpu: GpuSpec, eff: Efficiency, tokens: float) -> float:
    if s.tp == 1:
        return 0.0
    return 8 * tokens * s.hidden * 2 * (s.tp - 1) / s.tp / (gpu.nvlink_gb_s * 1e9 * eff.link)


def _cp_comm(s: Setup, gpu: GpuSpec, eff: Efficiency, tokens: float) -> float:
    """Ring attention: K and V of this rank's tokens pass CP - 1 peers forward; K, V and their gradients backward.
    Hidden behind the attention compute as far as it lasts (the caller subtracts it)."""
    if s.cp == 1:
        return 0.0
    kv = tokens * s.heads / s.tp * (s.qk_dim + s.rope_dim + s.v_dim) * 2
    link = gpu.nvlink_gb_s if s.tp * s.cp <= gpu.nvlink_domain else gpu.network_gb_s
    return 3 * kv * (s.cp - 1) / (link * 1e9 * eff.link)


def _a2a(s: Setup, gpu: GpuSpec, eff: Efficiency, tokens: float) -> float:
    """Dispatch + combine, forward and backward, of one MoE layer for one micro-batch on one GPU."""
    if s.ep * s.etp == 1:
        return 0.0
    local = max(1, min(s.ep, gpu.nvlink_domain // (s.tp * s.etp) or 1))  # EP peers sharing NVLink
    per_token = 4 * s.hidden * 2  # dispatch + combine, forward + backward, bf16
    sent = tokens / s.tp * s.etp
    nvl = sent * s.topk * per_token * (local - 1) / s.ep
    nodes = max(1, s.ep // local)
    remote_copies = s.topk * (s.ep - local) / s.ep
    if s.dispatcher == "deepep" and nodes > 1:  # one copy per remote node, node-limited routing
        remote_copies = min(s.topk, s.group_topk, nodes) * (nodes - 1) / nodes
    net = sent * remote_copies * per_token
    net_eff = DEEPEP_RDMA_EFFICIENCY if s.dispatcher == "deepep" else eff.link
    return max(nvl / (gpu.nvlink_gb_s * 1e9 * eff.link), net / (gpu.network_gb_s * 1e9 * net_eff))


def layer_costs(s: Setup, gpu: GpuSpec, eff: Efficiency, moe: bool) -> _Costs:
    """One micro-batch through one decoder layer (dense or MoE) on one GPU."""
    tokens = s.mbs * s.seq / s.cp
    lin, bf = _rates(s, gpu, eff, tokens)
    per_gpu = tokens / s.tp
    attn_lin = _attn_linear(s)
    dense_mlp = 3 * s.hidden * (s.shared_ffn if moe else s.ffn)
    gemm = _FB * per_gpu * (attn_lin + dense_mlp) / lin
    if moe:
        routed = _rates(s, gpu, eff, expert_rows(s))[0]
        gemm += _FB * per_gpu * (3 * s.hidden * s.topk * s.expert_ffn / routed + s.hidden * s.experts / bf)
    qk = s.qk_dim + s.rope_dim
    core = _FB * (s.heads * qk / 2 + s.heads * s.v_dim / 2) * s.seq * s.seq * s.mbs / (s.tp * s.cp)
    attn_rate = _rates(s, gpu, eff)[1]  # fused attention: its own kernel, not a token-row GEMM
    full = act.totals_without_recompute(s)[1 if moe else 0]
    kept = act.layer_totals(s)[1 if moe else 0]
    elementwise = eff.memory_bound * full / (gpu.hbm_tb_s * 1e12)
    redone = eff.memory_bound * (full - kept) / 3 / (gpu.hbm_tb_s * 1e12)  # the forward share, once more
    comm = _tp_comm(s, gpu, eff, tokens) + max(0.0, _cp_comm(s, gpu, eff, tokens) - core / attn_rate)
    recompute = _recompute(s, per_gpu, lin, core / attn_rate, moe, _rates(s, gpu, eff, expert_rows(s))[0]) + redone
    return _Costs(gemm, core / attn_rate, elementwise, recompute, comm, _a2a(s, gpu, eff, tokens) if moe else 0.0)


def _recompute(s: Setup, per_gpu: float, lin: float, attn_s: float, moe: bool, routed: float) -> float:
    rec, out = s.recompute, 0.0
    if "mla_up_proj" in rec:
        out += 2 * per_gpu * ((s.q_lora or 0) * s.heads * (s.qk_dim + s.rope_dim)
                              + s.kv_lora * s.heads * (s.qk_dim + s.v_dim)) / lin
    if "core_attn" in rec:
        out += attn_s / 3
    if "mlp" in rec and not moe:
        out += 2 * per_gpu * 3 * s.hidden * s.ffn / lin
    if moe and "moe" in rec:
        out += 2 * per_gpu * 3 * s.hidden * (s.topk * s.expert_ffn / routed + s.shared_ffn / lin)
    elif moe and "shared_experts" in rec:
        out += 2 * per_gpu * 3 * s.hidden * s.shared_ffn / lin
    return out


def _loss_cost(s: Setup, gpu: GpuSpec, eff: Efficiency) -> float:
    tokens = s.mbs * s.seq / s.cp
    _, bf = _rates(s, gpu, eff, tokens)
    heads = 1 + s.mtp
    logits = _FB * tokens / s.tp * s.hidden * s.vocab * heads / bf
    return logits + eff.memory_bound * act.layer_totals(s)[3] / (gpu.hbm_tb_s * 1e12)


CAUSES = ("gemm", "attention", "elementwise", "recompute", "tp_comm", "ep_a2a", "layer_fixed")
"""The per-micro-batch causes of ``stage_time``, in order."""


def _kind_vector(s: Setup, gpu: GpuSpec, eff: Efficiency, moe: bool) -> tuple[float, ...]:
    """``CAUSES`` seconds of one micro-batch through one layer of a kind; memoized per Setup."""
    key = ("kind", gpu.name, eff, moe)
    if key not in s.memo:
        c = layer_costs(s, gpu, eff, moe)
        compute = c.gemm + c.attention + c.elementwise + c.recompute
        s.memo[key] = (c.gemm, c.attention, c.elementwise, c.recompute, c.tp_comm,
                       c.exposed_a2a(eff, s.a2a_overlap, compute), eff.layer_fixed_s)
    return s.memo[key]  # type: ignore[no-any-return]


def stage_time(s: Setup, gpu: GpuSpec, eff: Efficiency, st: Stage) -> dict[str, float]:
    """Seconds of one micro-batch through one virtual stage, by cause."""
    mtp_moe = s.layers > s.first_dense
    out = [0.0] * len(CAUSES)
    for count, moe in ((st.dense + (0 if mtp_moe else st.mtp), False), (st.moe + (st.mtp if mtp_moe else 0), True)):
        if count:
            out = [o + count * v for o, v in zip(out, _kind_vector(s, gpu, eff, moe))]
    if st.loss:
        out[0] += _loss_cost(s, gpu, eff)
    if st.mtp:
        out[0] += st.mtp * _FB * s.mbs * s.seq / s.cp / s.tp * 2 * s.hidden * s.hidden \
            / _rates(s, gpu, eff, s.mbs * s.seq / s.cp)[0]
    return dict(zip(CAUSES, out))


def _group_bandwidth(s: Setup, gpu: GpuSpec, size: int, stride: int) -> float:
    """Bytes/s of a ring over a data-parallel group whose members are ``stride`` ranks apart: NVLink while the
    whole group shares a node, else the network."""
    in_node = max(1, min(gpu.nvlink_domain, s.gpus_per_node) // stride)
    return (gpu.nvlink_gb_s if size <= in_node else gpu.network_gb_s) * 1e9


def _dp_comm(s: Setup, gpu: GpuSpec, eff: Efficiency, rank: int) -> float:
    """Gradient reduce-scatter and parameter all-gather of the distributed optimizer (exposed unless overlapped)."""
    p = rank_params(s, rank)
    grad = 2.0 if s.grad_reduce_bf16 else 4.0
    param = 1.0 if s.fp8_param_gather else 2.0
    seconds = 0.0
    for count, size, stride in ((p.dense, s.dp * s.cp, s.tp), (p.expert, s.edp, s.ep * s.etp)):
        if size > 1:
            seconds += count * (grad + param) * (size - 1) / size / (_group_bandwidth(s, gpu, size, stride) * eff.link)
    return seconds * (0.1 if s.overlap_grad_reduce else 1.0)


def _optimizer(s: Setup, gpu: GpuSpec, rank: int) -> float:
    p = rank_params(s, rank)
    shard = p.dense / (s.dp * s.cp) + p.expert / s.edp if s.dist_opt else p.total
    per = 8 + (8 if s.bf16_moments else 16) + 4 + 2
    return (shard * per + p.total * 4 * 2) / (gpu.hbm_tb_s * 1e12)


def estimate_step(s: Setup, gpu: GpuSpec, eff: Efficiency = FITTED) -> StepEstimate:
    """Predicted step time, TFLOP/s/GPU and tokens/s/GPU, with the time by cause."""
    per_rank = []
    for rank in range(s.pp):
        parts = dict.fromkeys(CAUSES, 0.0)
        for st in s.rank_stages(rank):
            for key, value in stage_time(s, gpu, eff, st).items():
                parts[key] += value
        per_rank.append(parts)
    slow = max(range(s.pp), key=lambda r: sum(per_rank[r].values()))
    m = s.microbatches
    parts = {k: v * m for k, v in per_rank[slow].items()}
    if s.pp > 1:
        parts["pp_bubble"] = (s.pp - 1) / s.vpp * sum(per_rank[slow].values())
    parts["dp_comm"] = max(_dp_comm(s, gpu, eff, r) for r in range(s.pp))
    parts["optimizer"] = max(_optimizer(s, gpu, r) for r in range(s.pp))
    step = sum(parts.values())
    total_flops = flops.flops_per_iteration(model_shape(s), s.gbs, s.seq)
    return StepEstimate(step, total_flops / (step * s.world * 1e12), s.gbs * s.seq / (step * s.world), parts)
