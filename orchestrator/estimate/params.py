"""Parameters held by one GPU, split into the dense part (sharded by the distributed optimizer over DP x CP) and the
expert part (sharded over expert DP). Counts follow Megatron's modules for MLA + MoE GPT models."""

from __future__ import annotations

from dataclasses import dataclass

from .setup import Setup, Stage


@dataclass(frozen=True)
class RankParams:
    """Parameters on one GPU, by kind."""

    dense: float
    """Everything except routed experts: attention, dense MLPs, shared experts, router, norms, embeddings."""
    expert: float
    """Routed-expert weights."""
    embedding: float
    """Input embedding and output layer (kept in bf16 even with FP8)."""

    @property
    def total(self) -> float:
        return self.dense + self.expert


def attention(s: Setup) -> float:
    """One MLA block on one TP rank: down projections and norms are duplicated, up/out projections split."""
    qk = s.qk_dim + s.rope_dim
    q = s.hidden * s.heads * qk / s.tp if s.q_lora is None else (
        s.hidden * s.q_lora + s.q_lora + s.q_lora * s.heads * qk / s.tp)
    kv = s.hidden * (s.kv_lora + s.rope_dim) + s.kv_lora + s.kv_lora * s.heads * (s.qk_dim + s.v_dim) / s.tp
    return q + kv + s.heads * s.v_dim * s.hidden / s.tp + 2 * s.hidden  # + input and pre-MLP norms


def dense_mlp(s: Setup) -> float:
    """One SwiGLU MLP on one TP rank."""
    return 3 * s.hidden * s.ffn / s.tp


def moe_dense_part(s: Setup) -> float:
    """The non-expert part of a MoE MLP: router (+ expert bias) and shared expert."""
    return s.experts * s.hidden + s.experts + 3 * s.hidden * s.shared_ffn / s.tp


def moe_experts(s: Setup) -> float:
    """Routed experts held by one GPU (EP x ETP split)."""
    return s.experts * 3 * s.hidden * s.expert_ffn / (s.ep * s.etp)


def embedding(s: Setup) -> float:
    """Input embedding or output layer on one TP rank."""
    return s.vocab * s.hidden / s.tp


def mtp_extra(s: Setup) -> float:
    """One MTP layer's projection and norms (its transformer layer is counted apart)."""
    return 2 * s.hidden * s.hidden / s.tp + 3 * s.hidden


def stage_params(s: Setup, st: Stage) -> RankParams:
    """Parameters of one virtual stage on one GPU."""
    layers = st.dense + st.moe + st.mtp
    moe_layers = st.moe + (st.mtp if s.layers > s.first_dense else 0)
    dense_layers = layers - moe_layers
    emb = embedding(s) * (int(st.embedding) + int(st.loss))
    dense = (attention(s) * layers + dense_mlp(s) * dense_layers + moe_dense_part(s) * moe_layers
             + mtp_extra(s) * st.mtp + emb + s.hidden * int(st.loss))
    return RankParams(dense, moe_experts(s) * moe_layers, emb)


def rank_params(s: Setup, rank: int) -> RankParams:
    """Parameters of one pipeline rank (all its virtual stages); memoized per Setup."""
    key = ("rank_params", rank)
    if key not in s.memo:
        parts = [stage_params(s, st) for st in s.rank_stages(rank)]
        s.memo[key] = RankParams(sum(p.dense for p in parts), sum(p.expert for p in parts),
                                 sum(p.embedding for p in parts))
    return s.memo[key]  # type: ignore[no-any-return]
