"""Model FLOPs per iteration, the way Megatron-LM counts them for its ``throughput per GPU (TFLOP/s/GPU)``.

A typed re-derivation of ``num_floating_point_operations`` (``transformer_flops`` branch) in
``megatron/training/training.py`` of megatron-core 0.19.2, for GPT models with standard (MHA/GQA) or
multi-latent attention, dense and MoE MLPs (routed + shared experts, optional latent MoE) and multi-token
prediction, on unpacked (BSHD) batches: every sample is ``seq_len`` tokens with a full causal mask.

Counting rules, as Megatron's:
- every GEMM is done 3 times (forward, backward data-grad, backward weight-grad), 2 FLOPs per multiply-add;
- a SwiGLU MLP has 3 GEMMs of ``hidden x ffn`` (2 without SwiGLU);
- core attention (``QK^T`` and ``softmax(QK^T) V``) grows with ``seq_len**2`` and counts half of the square
  (the causal mask);
- each MTP layer adds one transformer layer (dense or MoE like the last decoder layer), its norms and its
  ``2h -> h`` projection, and one more output-logit GEMM.
Not covered: hybrid (Mamba/GDN) models, linear-attention variants, packed (THD) sequences.
Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

_PASSES = 3  # forward, backward data-grad, backward weight-grad
_FMA = 2  # one multiply-add = 2 FLOPs


@dataclass(frozen=True)
class ModelShape:
    """The parts of a GPT model's shape that its FLOPs depend on (Megatron argument names)."""

    num_layers: int
    """Decoder layers (``--num-layers``), not counting MTP layers."""
    hidden_size: int
    """``--hidden-size``."""
    ffn_hidden_size: int
    """Dense MLP width (``--ffn-hidden-size``); also the expert width when ``moe_ffn_hidden_size`` is None."""
    num_attention_heads: int
    """``--num-attention-heads``."""
    padded_vocab_size: int
    """Vocabulary after Megatron's padding (``> padded vocab ... new size``)."""
    swiglu: bool = True
    """``--swiglu``: gated MLPs, 3 GEMMs instead of 2."""
    multi_latent_attention: bool = False
    """``--multi-latent-attention`` (DeepSeek MLA)."""
    q_lora_rank: int | None = None
    """MLA query low-rank size (None: full-rank query projection)."""
    kv_lora_rank: int = 512
    """MLA key/value low-rank size."""
    qk_head_dim: int = 128
    """MLA query/key head size without the RoPE part."""
    qk_pos_emb_head_dim: int = 64
    """MLA query/key RoPE head size."""
    v_head_dim: int = 128
    """MLA value head size."""
    kv_channels: int | None = None
    """MHA/GQA head size (None: ``hidden_size // num_attention_heads``)."""
    group_query_attention: bool = False
    """``--group-query-attention``."""
    num_query_groups: int | None = None
    """GQA key/value groups (used only with ``group_query_attention``)."""
    attention_output_gate: bool = False
    """``--attention-output-gate``: one more query-sized projection."""
    num_experts: int | None = None
    """Routed experts (None: a dense model)."""
    moe_layer_freq: int | tuple[int, ...] = 1
    """MoE layer pattern: every N-th layer, or one 0/1 flag per layer (DeepSeek-V3: 3 zeros then 58 ones)."""
    moe_router_topk: int = 2
    """Experts each token is routed to."""
    moe_ffn_hidden_size: int | None = None
    """Routed-expert width (None: ``ffn_hidden_size``)."""
    moe_shared_expert_intermediate_size: int | None = None
    """Total shared-expert width (None: no shared expert)."""
    moe_latent_size: int | None = None
    """Latent MoE: experts run on this width, with an up and a down projection around them."""
    mtp_num_layers: int | None = None
    """Multi-token-prediction layers (None or 0: none)."""

    @classmethod
    def from_args(cls, args: Mapping[str, object], padded_vocab_size: int | None = None) -> ModelShape:
        """The shape from Megatron's argument dump (``LogSummary.args``).

        ``padded_vocab_size`` is the log's ``> padded vocab ... new size`` figure; without it, it is computed from
        ``vocab_size``, ``make_vocab_size_divisible_by`` and the tensor-parallel size as Megatron pads it.
        """
        def get(name: str, default: object = None) -> object:
            value = args.get(name)
            return default if value is None else value

        def number(name: str, default: int | None = None) -> int:
            value = get(name, default)
            if not isinstance(value, (int, float, str)):
                raise ValueError(f"the log's argument dump has no number for {name} ({value!r})")
            return int(value)

        vocab = padded_vocab_size or get("padded_vocab_size")
        if vocab is None:
            raw = get("vocab_size")
            if not isinstance(raw, int):
                raise ValueError("no vocabulary size: the log has neither '> padded vocab' nor vocab_size")
            vocab = pad_vocab(raw, number("make_vocab_size_divisible_by", 128), number("tensor_model_parallel_size", 1))
        if not isinstance(vocab, (int, float, str)):
            raise ValueError(f"the log's padded vocabulary size is not a number ({vocab!r})")
        freq = get("moe_layer_freq", 1)
        optional = {name: (number(name) if isinstance(get(name), int) else None) for name in (
            "q_lora_rank", "kv_channels", "num_query_groups", "num_experts", "moe_ffn_hidden_size",
            "moe_shared_expert_intermediate_size", "moe_latent_size", "mtp_num_layers")}
        return cls(
            num_layers=number("num_layers"), hidden_size=number("hidden_size"),
            ffn_hidden_size=number("ffn_hidden_size"), num_attention_heads=number("num_attention_heads"),
            padded_vocab_size=int(vocab),
            swiglu=bool(get("swiglu", False)), multi_latent_attention=bool(get("multi_latent_attention", False)),
            kv_lora_rank=number("kv_lora_rank", 512), qk_head_dim=number("qk_head_dim", 128),
            qk_pos_emb_head_dim=number("qk_pos_emb_head_dim", 64), v_head_dim=number("v_head_dim", 128),
            group_query_attention=bool(get("group_query_attention", False)),
            attention_output_gate=bool(get("attention_output_gate", False)),
            moe_layer_freq=tuple(int(x) for x in freq) if isinstance(freq, (list, tuple)) else number("moe_layer_freq", 1),
            moe_router_topk=number("moe_router_topk", 2), **optional)


def pad_vocab(vocab_size: int, divisible_by: int = 128, tensor_parallel: int = 1) -> int:
    """Megatron's vocabulary padding: up to a multiple of ``divisible_by x tensor_parallel``."""
    multiple = divisible_by * tensor_parallel
    return math.ceil(vocab_size / multiple) * multiple


def moe_layer_pattern(shape: ModelShape) -> list[int]:
    """One 0/1 flag per decoder layer: 1 where the MLP is a MoE layer."""
    if shape.num_experts is None:
        return [0] * shape.num_layers
    if isinstance(shape.moe_layer_freq, int):
        return [1 if i % shape.moe_layer_freq == 0 else 0 for i in range(shape.num_layers)]
    if len(shape.moe_layer_freq) != shape.num_layers:
        raise ValueError(f"moe_layer_freq has {len(shape.moe_layer_freq)} flags for {shape.num_layers} layers")
    return list(shape.moe_layer_freq)


def _attention_terms(shape: ModelShape) -> tuple[float, float]:
    """Per layer: (FLOPs per token of the projections, FLOPs per ``seq_len**2`` of core attention)."""
    h, n = shape.hidden_size, shape.num_attention_heads
    if shape.multi_latent_attention:
        qk = shape.qk_head_dim + shape.qk_pos_emb_head_dim
        q_proj = h * n * qk if shape.q_lora_rank is None else shape.q_lora_rank * (h + n * qk + 1)
        kv_proj = shape.kv_lora_rank * (h + n * (shape.qk_head_dim + shape.v_head_dim) + 1)
        rope_proj = h * shape.qk_pos_emb_head_dim
        out_proj = n * shape.v_head_dim * h
        linear = q_proj + kv_proj + rope_proj + out_proj
        core = n * qk / 2 + n * shape.v_head_dim / 2
    else:
        head = shape.kv_channels or h // n
        groups = shape.num_query_groups if shape.group_query_attention and shape.num_query_groups else n
        query, key_value = head * n, head * groups
        gate = query if shape.attention_output_gate else 0
        linear = h * (query + 2 * key_value + gate) + query * h
        core = query / 2 * 2  # half the square (causal), two GEMMs
    return _PASSES * _FMA * linear, _PASSES * _FMA * core


def flops_per_iteration(shape: ModelShape, global_batch: int, seq_len: int) -> float:
    """Model FLOPs of one training iteration (forward + backward) over ``global_batch`` samples of ``seq_len``."""
    h = shape.hidden_size
    tokens = global_batch * seq_len
    pattern = moe_layer_pattern(shape)
    mtp = shape.mtp_num_layers or 0
    moe_layers = sum(pattern) + pattern[-1] * mtp  # an MTP layer is built like the last decoder layer
    dense_layers = shape.num_layers - sum(pattern) + (1 - pattern[-1]) * mtp
    attention_layers = shape.num_layers + mtp
    gemms = 3 if shape.swiglu else 2
    expert_width = shape.moe_ffn_hidden_size or shape.ffn_hidden_size
    routed: float
    if shape.moe_latent_size is None:
        routed = expert_width * shape.moe_router_topk * gemms
    else:
        routed = expert_width * shape.moe_router_topk * gemms * shape.moe_latent_size / h + 2 * shape.moe_latent_size
    shared = (shape.moe_shared_expert_intermediate_size or 0) * gemms
    mlp = _PASSES * _FMA * h * (shape.ffn_hidden_size * gemms * dense_layers + (routed + shared) * moe_layers)
    attn_linear, attn_core = _attention_terms(shape)
    mtp_extra = _PASSES * _FMA * mtp * (3 * h + 2 * h * h)  # eh/enorm/hnorm + the 2h -> h projection
    logits = _PASSES * _FMA * h * shape.padded_vocab_size * (mtp + 1)
    per_token = mlp + attn_linear * attention_layers + mtp_extra + logits
    return tokens * per_token + global_batch * seq_len * seq_len * attn_core * attention_layers


def flops_per_token(shape: ModelShape, seq_len: int) -> float:
    """Model FLOPs per trained token (depends on ``seq_len`` through core attention only)."""
    return flops_per_iteration(shape, 1, seq_len) / seq_len


def tflops_per_gpu(shape: ModelShape, global_batch: int, seq_len: int, iteration_s: float,
                   world_size: int) -> float:
    """Megatron's ``throughput per GPU (TFLOP/s/GPU)`` for one iteration time (seconds) on ``world_size`` GPUs."""
    return flops_per_iteration(shape, global_batch, seq_len) / (iteration_s * 1e12 * world_size)


def tokens_per_s_per_gpu(tflops: float, shape: ModelShape, seq_len: int) -> float:
    """TFLOP/s/GPU -> tokens/s/GPU for this model and sequence length."""
    return tflops * 1e12 / flops_per_token(shape, seq_len)


def tflops_from_tokens(tokens_per_s: float, shape: ModelShape, seq_len: int) -> float:
    """tokens/s/GPU -> TFLOP/s/GPU for this model and sequence length."""
    return tokens_per_s * flops_per_token(shape, seq_len) / 1e12


DEEPSEEK_V3 = ModelShape(
    num_layers=61, hidden_size=7168, ffn_hidden_size=18432, num_attention_heads=128, padded_vocab_size=129280,
    swiglu=True, multi_latent_attention=True, q_lora_rank=1536, kv_lora_rank=512, qk_head_dim=128,
    qk_pos_emb_head_dim=64, v_head_dim=128, num_experts=256, moe_layer_freq=(0,) * 3 + (1,) * 58,
    moe_router_topk=8, moe_ffn_hidden_size=2048, moe_shared_expert_intermediate_size=2048, mtp_num_layers=1)
"""DeepSeek-V3 (671B): 61 layers of which the first 3 dense, MLA, 256 experts top-8 + 1 shared, MTP 1."""
