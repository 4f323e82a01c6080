"""One training configuration flattened into what the estimator needs (``Setup``), from a toolkit experiment or
from Megatron's argument dump (a measured run's log).

Pipeline stages are counted per virtual stage in pipeline order: ``Stage(dense, moe, mtp, embedding, loss)``.
A flexible layout (``Et|(tt|)*30mL``) is used as written; without one, Megatron's even split is used (embedding on
the first stage, MTP layers and the loss on the last).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from ..spec import layout as layout_mod, megatron_args
from ..spec.config import Experiment

RECOMPUTE_MODULES = ("mla_up_proj", "mlp", "moe_act", "layernorm", "core_attn", "moe", "shared_experts")


@dataclass(frozen=True)
class Stage:
    """What one virtual pipeline stage holds."""

    dense: int
    """Decoder layers with a dense MLP."""
    moe: int
    """Decoder layers with a MoE MLP."""
    mtp: int
    """MTP layers (each an MoE or dense layer like the last decoder layer, plus its projection)."""
    embedding: bool
    """The input embedding lives here."""
    loss: bool
    """The output layer, logits and loss live here."""


@dataclass(frozen=True)
class Setup:
    """A training configuration as the estimator sees it (per-GPU view derives from it)."""

    hidden: int
    """Model width h."""
    ffn: int
    """Dense MLP width."""
    heads: int
    """Attention heads."""
    q_lora: int | None
    """MLA query low rank (None: full-rank query)."""
    kv_lora: int
    """MLA key/value low rank."""
    qk_dim: int
    """Query/key head size without RoPE."""
    rope_dim: int
    """RoPE part of the query/key head."""
    v_dim: int
    """Value head size."""
    experts: int
    """Routed experts per MoE layer."""
    topk: int
    """Experts per token."""
    group_topk: int
    """Expert groups a token may use (node-limited routing)."""
    expert_ffn: int
    """Width of one routed expert."""
    shared_ffn: int
    """Total shared-expert width."""
    vocab: int
    """Vocabulary size (padded)."""
    seq: int
    """Sequence length."""
    layers: int
    """Decoder layers (no MTP)."""
    first_dense: int
    """Leading dense layers."""
    mtp: int
    """MTP layers (0: off)."""
    tp: int
    """Tensor parallel."""
    pp: int
    """Pipeline parallel."""
    vpp: int
    """Virtual stages per pipeline rank."""
    cp: int
    """Context parallel."""
    ep: int
    """Expert parallel."""
    etp: int
    """Expert tensor parallel."""
    sp: bool
    """Sequence parallel (TP > 1)."""
    mbs: int
    """Micro-batch size."""
    gbs: int
    """Global batch size."""
    world: int
    """GPUs."""
    gpus_per_node: int
    """GPUs per node."""
    fp8: bool
    """FP8 (blockwise) GEMMs."""
    fp8_param_gather: bool
    """FP8 primary weights."""
    bf16_moments: bool
    """Precision-aware optimizer with bf16 Adam moments."""
    dist_opt: bool
    """Distributed optimizer."""
    recompute: frozenset[str]
    """Selective recompute modules."""
    ce_fusion: bool
    """Fused cross-entropy."""
    dispatcher: str
    """``alltoall``, ``allgather`` or ``deepep``."""
    a2a_overlap: bool
    """EP all-to-all overlapped with another micro-batch's compute."""
    overlap_grad_reduce: bool
    """DP gradient reduce-scatter overlapped with backward."""
    overlap_param_gather: bool
    """Distributed-optimizer parameter all-gather overlapped with forward."""
    grad_reduce_bf16: bool
    """Gradients reduced in bf16 (else fp32)."""
    cuda_graphs: bool
    """TE CUDA graphs of attention."""
    stages: tuple[Stage, ...]
    """Every virtual stage in pipeline order (PP x VPP of them); stage s runs on rank s % PP."""
    memo: dict[Any, Any] = field(default_factory=dict, init=False, compare=False, hash=False, repr=False)
    """Per-instance results of the estimator's pure functions (a fresh one for every ``replace``)."""

    def __hash__(self) -> int:
        if "hash" not in self.memo:
            self.memo["hash"] = hash(tuple(getattr(self, f) for f in _FIELDS))
        return self.memo["hash"]  # type: ignore[no-any-return]

    @property
    def dp(self) -> int:
        """Data-parallel size of the dense part (without CP)."""
        return self.world // (self.tp * self.cp * self.pp)

    @property
    def edp(self) -> int:
        """Data-parallel size of the experts."""
        return self.world // (self.etp * self.ep * self.pp)

    @property
    def microbatches(self) -> int:
        """Micro-batches per pipeline per step."""
        return max(1, self.gbs // (self.mbs * self.dp))

    def rank_stages(self, rank: int) -> tuple[Stage, ...]:
        """The virtual stages of one pipeline rank, chunk 0 first."""
        key = ("rank_stages", rank)
        if key not in self.memo:
            self.memo[key] = tuple(self.stages[v * self.pp + rank] for v in range(self.vpp))
        return self.memo[key]  # type: ignore[no-any-return]


_FIELDS = tuple(name for name in Setup.__dataclass_fields__ if name != "memo")


def even_stages(layers: int, first_dense: int, mtp: int, count: int) -> tuple[Stage, ...]:
    """Megatron's split without a layout: equal layer counts, MTP and loss on the last stage."""
    per, out = layers // count, []
    for s in range(count):
        lo, hi = s * per, (s + 1) * per if s < count - 1 else layers
        dense = max(0, min(hi, first_dense) - lo)
        out.append(Stage(dense, hi - lo - dense, mtp if s == count - 1 else 0, s == 0, s == count - 1))
    return tuple(out)


def layout_stages(text: str, first_dense: int) -> tuple[Stage, ...]:
    """Stages of a flexible layout string; the first ``first_dense`` 't' are dense layers."""
    out, seen = [], 0
    for symbols in layout_mod.parse(text).stages:
        t = symbols.count("t")
        dense = max(0, min(seen + t, first_dense) - seen)
        out.append(Stage(dense, t - dense, symbols.count("m"), "E" in symbols, "L" in symbols))
        seen += t
    return tuple(out)


def _dispatcher(kind: str, deepep: bool) -> str:
    return "deepep" if kind == "flex" and deepep else ("alltoall" if kind == "flex" else kind)


def from_experiment(exp: Experiment) -> Setup:
    """The estimator's view of a toolkit experiment (profile + recipe + overrides)."""
    r = exp.recipe
    m, p, t, s = r.model, r.parallel, r.training, r.switches
    mtp = m.mtp_num_layers if s.mtp else 0
    layout = layout_mod.in_force(p.pipeline_layout)
    stages = (layout_stages(layout, m.first_k_dense) if layout
              else even_stages(m.num_layers, m.first_k_dense, mtp, p.pp * p.vpp))
    vpp = len(stages) // p.pp if layout else p.vpp
    rendered = set(megatron_args.parallel_flags(p)) | set(t.extra_args)  # the flags the launch renders for them
    return Setup(
        hidden=m.hidden_size, ffn=m.ffn_hidden_size, heads=m.num_attention_heads, q_lora=m.q_lora_rank,
        kv_lora=m.kv_lora_rank, qk_dim=m.qk_head_dim, rope_dim=m.qk_pos_emb_head_dim, v_dim=m.v_head_dim,
        experts=m.num_experts, topk=m.moe_router_topk, group_topk=m.moe_router_group_topk,
        expert_ffn=m.moe_ffn_hidden_size, shared_ffn=m.moe_shared_expert_intermediate_size,
        vocab=_pad(m.vocab_size, p.tp), seq=m.seq_length, layers=m.num_layers, first_dense=m.first_k_dense, mtp=mtp,
        tp=p.tp, pp=p.pp, vpp=max(1, vpp), cp=p.cp, ep=p.ep, etp=p.etp, sp=p.sequence_parallel and p.tp > 1,
        mbs=t.micro_batch_size, gbs=t.global_batch_size, world=exp.world_size,
        gpus_per_node=exp.profile.gpus_per_node, fp8=s.fp8_blockwise, fp8_param_gather=s.fp8_param_gather,
        bf16_moments=s.bf16_optimizer_states, dist_opt=p.distributed_optimizer,
        recompute=frozenset(s.recompute_modules) if s.fine_grained_recompute else frozenset(),
        ce_fusion=s.ce_loss_fusion, dispatcher=_dispatcher(s.token_dispatcher, s.deepep),
        a2a_overlap=s.ep_a2a_overlap, overlap_grad_reduce="--overlap-grad-reduce" in rendered,
        overlap_param_gather="--overlap-param-gather" in rendered, grad_reduce_bf16="--grad-reduce-in-bf16" in rendered,
        cuda_graphs=s.cuda_graphs, stages=stages)


def _pad(vocab: int, tp: int, divisible_by: int = 128) -> int:
    multiple = divisible_by * tp
    return -(-vocab // multiple) * multiple


def _moe_freq_dense(freq: object, layers: int) -> int:
    """Leading dense layers from Megatron's ``moe_layer_freq`` (a list of 0/1 flags or every-N)."""
    if isinstance(freq, (list, tuple)):
        return next((i for i, f in enumerate(freq) if f), layers)
    return 0


def from_megatron_args(args: Mapping[str, object], padded_vocab: int | None = None,
                       gpus_per_node: int = 8) -> Setup:
    """The estimator's view of a measured run, from Megatron's argument dump (``LogSummary.args``)."""
    def num(name: str, default: int = 0) -> int:
        value = args.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def flag(name: str) -> bool:
        return bool(args.get(name))

    layers, pp = num("num_layers"), num("pipeline_model_parallel_size", 1)
    first_dense = _moe_freq_dense(args.get("moe_layer_freq"), layers)
    mtp, vpp = num("mtp_num_layers"), num("virtual_pipeline_model_parallel_size", 1) or 1
    layout = args.get("pipeline_model_parallel_layout")
    try:
        stages = (layout_stages(str(layout), first_dense) if isinstance(layout, str) and layout not in ("", "None")
                  else even_stages(layers, first_dense, mtp, pp * vpp))
    except layout_mod.LayoutError as err:
        raise ValueError(f"pipeline_model_parallel_layout {layout!r} in the argument dump: {err}") from err
    modules = args.get("recompute_modules")
    modules = [str(m) for m in modules] if isinstance(modules, (list, tuple)) else []
    kind = str(args.get("moe_token_dispatcher_type") or "alltoall")
    tp = num("tensor_model_parallel_size", 1)
    return Setup(
        hidden=num("hidden_size"), ffn=num("ffn_hidden_size"), heads=num("num_attention_heads"),
        q_lora=num("q_lora_rank") or None, kv_lora=num("kv_lora_rank", 512), qk_dim=num("qk_head_dim", 128),
        rope_dim=num("qk_pos_emb_head_dim", 64), v_dim=num("v_head_dim", 128), experts=num("num_experts"),
        topk=num("moe_router_topk", 1), group_topk=num("moe_router_group_topk") or num("moe_router_topk", 1),
        expert_ffn=num("moe_ffn_hidden_size"), shared_ffn=num("moe_shared_expert_intermediate_size"),
        vocab=padded_vocab or _pad(num("vocab_size"), tp), seq=num("seq_length"), layers=layers,
        first_dense=first_dense, mtp=mtp, tp=tp, pp=pp, vpp=len(stages) // pp, cp=num("context_parallel_size", 1),
        ep=num("expert_model_parallel_size", 1), etp=num("expert_tensor_parallel_size", 1),
        sp=flag("sequence_parallel") and tp > 1, mbs=num("micro_batch_size", 1),
        gbs=num("global_batch_size"), world=num("world_size", 1), gpus_per_node=gpus_per_node,
        fp8=args.get("fp8_recipe") is not None and args.get("fp8") not in (None, False, "None"),
        fp8_param_gather=flag("fp8_param_gather"),
        bf16_moments=flag("use_precision_aware_optimizer") and str(args.get("exp_avg_dtype")).endswith(("bf16", "bfloat16")),
        dist_opt=flag("use_distributed_optimizer"),
        recompute=frozenset(modules) if args.get("recompute_granularity") == "selective" else frozenset(),
        ce_fusion=flag("cross_entropy_loss_fusion"),
        dispatcher=_dispatcher(kind, args.get("moe_flex_dispatcher_backend") == "deepep" or flag("moe_enable_deepep")),
        a2a_overlap=flag("overlap_moe_expert_parallel_comm"), overlap_grad_reduce=flag("overlap_grad_reduce"),
        overlap_param_gather=flag("overlap_param_gather"), grad_reduce_bf16=flag("grad_reduce_in_bf16"),
        cuda_graphs=args.get("cuda_graph_impl") not in (None, "none", "None"), stages=stages)


def with_changes(setup: Setup, **changes: object) -> Setup:
    """A copy with some fields changed (the planner's variations)."""
    return replace(setup, **changes)  # type: ignore[arg-type]
