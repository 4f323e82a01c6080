"""The FLOPs formula against Megatron's own logged throughput and the published DeepSeek-V3 figures."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.spec.flops import (DEEPSEEK_V3, ModelShape, flops_per_iteration, flops_per_token,
                                        moe_layer_pattern, pad_vocab, tflops_from_tokens,
                                        tflops_per_gpu, tokens_per_s_per_gpu)
from orchestrator.observe.logparse import parse_file

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "megatron-logs"
OK_LOGS = sorted(LOGS.glob("ok_*.log"))


@pytest.mark.parametrize("path", OK_LOGS, ids=lambda p: p.stem)
def test_formula_reproduces_megatrons_logged_tflops(path: Path) -> None:
    summary = parse_file(path)
    shape = ModelShape.from_args(summary.args, summary.padded_vocab_size)
    seq, world = summary.args["seq_length"], summary.args["world_size"]
    assert isinstance(seq, int) and isinstance(world, int)
    ours = []
    for rec in summary.records:
        assert rec.elapsed_ms and rec.tflops_per_gpu and rec.global_batch_size
        value = tflops_per_gpu(shape, rec.global_batch_size, seq, rec.elapsed_ms / 1000, world)
        # Megatron prints TFLOP/s with one decimal and ms with one decimal; 0.5 % covers that rounding
        assert value == pytest.approx(rec.tflops_per_gpu, rel=5e-3), rec.iteration
        if rec.iteration >= 3:
            ours.append(value)
    logged = statistics.median(r.tflops_per_gpu for r in summary.records if r.iteration >= 3)
    assert statistics.median(ours) == pytest.approx(logged, rel=5e-3)


def test_shape_from_the_proxy_argument_dump() -> None:
    summary = parse_file(LOGS / "ok_bf16_alltoall_ep2.log")
    shape = ModelShape.from_args(summary.args, summary.padded_vocab_size)
    assert shape.multi_latent_attention and shape.swiglu
    assert (shape.num_layers, shape.num_experts, shape.moe_router_topk, shape.mtp_num_layers) == (3, 16, 8, 1)
    assert moe_layer_pattern(shape) == [0, 1, 1]
    assert (shape.q_lora_rank, shape.kv_lora_rank, shape.qk_pos_emb_head_dim) == (1536, 512, 64)
    assert shape.padded_vocab_size == 129280
    # 2 x H200, GBS 8 x 4096 tokens: the proxy costs 27.75 GFLOP per token
    assert flops_per_token(shape, 4096) == pytest.approx(27.753e9, rel=1e-4)


def test_vocab_padding_when_the_log_has_no_padded_vocab_line() -> None:
    args = dict(parse_file(LOGS / "ok_bf16_alltoall_ep2.log").args)
    assert ModelShape.from_args(args).padded_vocab_size == 129280  # already a multiple of 128
    args.update(vocab_size=129281, tensor_model_parallel_size=2)
    assert ModelShape.from_args(args).padded_vocab_size == 129536
    assert pad_vocab(50257, 128, 1) == 50304
    with pytest.raises(ValueError, match="vocabulary"):
        ModelShape.from_args({**args, "vocab_size": None})


def test_deepseek_v3_costs_about_260_gflop_per_token() -> None:
    # The published pair (1024 H100, FP8): 338 TFLOP/s/GPU <-> 1297 tokens/s/GPU, i.e. 338e12 / 1297 = 260.6
    # GFLOP/token, "about 260". The two figures are rounded (338 to +-0.15 %), so their ratio is known to about
    # +-0.2 %; 0.5 % leaves room for that and still fails if a part of the model is missing (the MTP layer alone
    # is 3.9 % of the total, the output logits 2.1 %).
    per_token = flops_per_token(DEEPSEEK_V3, 4096)
    assert per_token == pytest.approx(260e9, rel=5e-3)
    assert per_token == pytest.approx(338e12 / 1297, rel=5e-3)
    without_mtp = flops_per_token(replace(DEEPSEEK_V3, mtp_num_layers=None), 4096)
    assert abs(without_mtp - 260e9) / 260e9 > 0.03


def test_deepseek_v3_tflops_tokens_conversion() -> None:
    assert tokens_per_s_per_gpu(338, DEEPSEEK_V3, 4096) == pytest.approx(1297, rel=5e-3)
    assert tflops_from_tokens(1297, DEEPSEEK_V3, 4096) == pytest.approx(338, rel=5e-3)
    # the two conversions are inverse to each other
    assert tflops_from_tokens(tokens_per_s_per_gpu(338, DEEPSEEK_V3, 4096), DEEPSEEK_V3, 4096) == pytest.approx(338)


def test_dense_mha_matches_the_closed_form() -> None:
    # GPT with MHA, 4h GELU MLP: 72 L h^2 (1 + s / (12 h)) + 6 h V FLOPs per token (causal attention)
    L, h, s, V = 24, 2048, 2048, 51200
    gpt = ModelShape(num_layers=L, hidden_size=h, ffn_hidden_size=4 * h, num_attention_heads=16,
                     padded_vocab_size=V, swiglu=False)
    expected = 72 * L * h * h * (1 + s / (12 * h)) + 6 * h * V
    assert flops_per_token(gpt, s) == pytest.approx(expected, rel=1e-12)
    assert flops_per_iteration(gpt, 8, s) == pytest.approx(8 * s * expected, rel=1e-12)


def test_gqa_shrinks_only_the_key_value_projections() -> None:
    h, n = 4096, 32
    mha = ModelShape(num_layers=1, hidden_size=h, ffn_hidden_size=14336, num_attention_heads=n,
                     padded_vocab_size=128256)
    gqa = replace(mha, group_query_attention=True, num_query_groups=8)
    # K and V projections: 2 x h x (h/n x groups); 6 FLOPs per parameter per token
    assert flops_per_token(mha, 8192) - flops_per_token(gqa, 8192) == pytest.approx(6 * 2 * h * (h // n) * (n - 8))


def test_moe_layer_frequency_as_an_integer() -> None:
    shape = replace(DEEPSEEK_V3, num_layers=4, moe_layer_freq=2)
    assert moe_layer_pattern(shape) == [1, 0, 1, 0]
    with pytest.raises(ValueError, match="flags"):
        moe_layer_pattern(replace(DEEPSEEK_V3, num_layers=4))
