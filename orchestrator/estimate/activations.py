"""Activation bytes one micro-batch leaves saved for backward, per layer kind, on one GPU.

Every term is a tensor some module saves between its forward and its backward, in bytes, named
``<block>.<tensor>``. Tokens: ``T = MBS x seq / CP`` per CP rank; tensors of width ``h`` outside the
tensor-parallel region hold ``T / TP`` tokens under sequence parallelism; tensors inside it hold ``T`` tokens and
``1/TP`` of the heads or width. Linear layers under FP8 save a 1-byte copy of their input (2 bytes in BF16).
Routed experts see ``T x top-k / TP x ETP`` tokens per GPU (balanced routing, dropless). The softmax of
Megatron's cross-entropy is kept in fp32 per output head (main + each MTP head).
"""

from __future__ import annotations

from dataclasses import replace

from .setup import Setup

BF16 = 2
FP32 = 4


def _tokens(s: Setup) -> tuple[float, float]:
    """(tokens inside the TP region, tokens of h-wide tensors outside it) on one GPU."""
    t = s.mbs * s.seq / s.cp
    return t, t / s.tp if s.sp else t


def attention_terms(s: Setup) -> dict[str, float]:
    """One MLA block (input norm to the residual before the MLP), recompute applied."""
    t, ts = _tokens(s)
    q8 = 1 if s.fp8 else BF16
    n = s.heads / s.tp
    rec = s.recompute
    out = {
        "attn.input": ts * s.hidden * BF16,
        "attn.norm_out": 0.0 if ("layernorm" in rec and s.fp8) else ts * s.hidden * q8,
        "attn.q_lora": t * (s.q_lora or 0) * (BF16 + q8),
        "attn.kv_lora": t * (s.kv_lora * (BF16 + q8) + s.rope_dim * BF16),
        "attn.qkv": 0.0 if "mla_up_proj" in rec else t * n * (2 * (s.qk_dim + s.rope_dim) + s.v_dim) * BF16,
        "attn.core_out": t * n * s.v_dim * BF16 * (0 if ("core_attn" in rec and s.fp8) else 1),
        "attn.softmax_stats": 0.0 if "core_attn" in rec else t * n * FP32,
        "attn.proj_in": t * n * s.v_dim * (1 if s.fp8 else 0),
        "attn.residual": ts * s.hidden * BF16,
    }
    return out


def dense_mlp_terms(s: Setup) -> dict[str, float]:
    """One dense SwiGLU MLP."""
    t, ts = _tokens(s)
    q8 = 1 if s.fp8 else BF16
    f = s.ffn / s.tp
    if "mlp" in s.recompute:
        return {"mlp.input": ts * s.hidden * BF16}
    return {"mlp.input": 0.0 if ("layernorm" in s.recompute and s.fp8) else ts * s.hidden * q8,
            "mlp.fc1_out": t * 2 * f * BF16, "mlp.act_out": t * f * q8}


def moe_terms(s: Setup) -> dict[str, float]:
    """One MoE MLP: router, dispatched tokens, expert FC1/activation, shared expert."""
    t, ts = _tokens(s)
    q8 = 1 if s.fp8 else BF16
    rec = s.recompute
    routed = t * s.topk / s.tp * s.etp
    fe, fs = s.expert_ffn / s.etp, s.shared_ffn / s.tp
    if "moe" in rec:
        return {"moe.input": ts * s.hidden * BF16}
    shared = 0.0 if "shared_experts" in rec else t * (2 * fs * BF16 + fs * q8) + (ts * s.hidden if s.fp8 else 0)
    return {
        "moe.input": ts * s.hidden * BF16,
        "moe.router": ts * s.experts * (2 * FP32 + 1),
        "moe.permuted_tokens": routed * s.hidden * q8,
        "moe.expert_fc1_out": routed * 2 * fe * BF16,
        "moe.expert_act_out": 0.0 if "moe_act" in rec else routed * fe * q8,
        "moe.probs_and_maps": routed * (FP32 + 8),
        "moe.shared_expert": shared,
    }


def mtp_extra_terms(s: Setup) -> dict[str, float]:
    """One MTP layer's own part: the two norms and the 2h -> h projection input."""
    _, ts = _tokens(s)
    q8 = 1 if s.fp8 else BF16
    return {"mtp.norms_and_proj": ts * s.hidden * (3 * BF16 + 2 * q8)}


def loss_terms(s: Setup) -> dict[str, float]:
    """Final norm, output-layer input and fp32 softmax of each output head (main + MTP heads)."""
    t, ts = _tokens(s)
    heads = 1 + s.mtp
    return {"output.norm_and_input": heads * 2 * ts * s.hidden * BF16,
            "output.logits_fp32": heads * t * s.vocab / s.tp * FP32}


def logits_transient(s: Setup) -> float:
    """Extra bytes at the last loss: the bf16 logits beside their fp32 copy; the fused CE holds one more fp32."""
    t, _ = _tokens(s)
    return t * s.vocab / s.tp * (BF16 + (FP32 if s.ce_fusion else 0))


def layer_transient(s: Setup, moe: bool) -> float:
    """Workspace of one layer's backward: gradients of q/k/v, or the dispatched tokens in bf16 twice."""
    t, _ = _tokens(s)
    attn = t * s.heads / s.tp * (2 * (s.qk_dim + s.rope_dim) + s.v_dim) * BF16
    return max(attn, t * s.topk / s.tp * s.etp * s.hidden * BF16 * 2) if moe else attn


def layer_totals(s: Setup) -> tuple[float, float, float, float]:
    """(dense layer, MoE layer, MTP extra, loss stage) bytes of one micro-batch; memoized per Setup."""
    if "totals" not in s.memo:
        attn = sum(attention_terms(s).values())
        s.memo["totals"] = (attn + sum(dense_mlp_terms(s).values()), attn + sum(moe_terms(s).values()),
                            sum(mtp_extra_terms(s).values()), sum(loss_terms(s).values()))
    return s.memo["totals"]  # type: ignore[no-any-return]


_NO_RECOMPUTE: dict[tuple[object, ...], tuple[float, float, float, float]] = {}


def totals_without_recompute(s: Setup) -> tuple[float, float, float, float]:
    """``layer_totals`` as if nothing were recomputed: the bytes the forward's element-wise kernels produce."""
    if not s.recompute:
        return layer_totals(s)
    key = (s.hidden, s.ffn, s.heads, s.q_lora, s.kv_lora, s.qk_dim, s.rope_dim, s.v_dim, s.experts, s.topk,
           s.expert_ffn, s.shared_ffn, s.vocab, s.seq, s.mtp, s.tp, s.cp, s.etp, s.sp, s.mbs, s.fp8, s.ce_fusion)
    if key not in _NO_RECOMPUTE:
        _NO_RECOMPUTE[key] = layer_totals(replace(s, recompute=frozenset()))
    return _NO_RECOMPUTE[key]
