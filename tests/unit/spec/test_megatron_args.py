"""Recipe → Megatron arguments: every key configuration of the seed guide, translated per Megatron version."""

from __future__ import annotations

import pytest

from orchestrator.spec.config import load_experiment
from orchestrator.spec.megatron_args import build, entry_command, translate
from orchestrator.spec.slurm_time import limit_minutes as time_limit_minutes
from orchestrator.spec.megatron_versions import Target, parse_version

GUIDE_FLAGS_ANY_VERSION = [
    "--moe-router-dtype fp32", "--moe-permute-fusion", "--moe-grouped-gemm", "--moe-router-fusion",
    "--moe-token-dispatcher-type flex", "--recompute-granularity selective",
    "--recompute-modules mla_up_proj mlp", "--cross-entropy-loss-fusion", "--fp8-recipe blockwise",
    "--fp8-format e4m3", "--fp8-param-gather", "--use-precision-aware-optimizer", "--exp-avg-dtype bf16",
    "--exp-avg-sq-dtype bf16", "--manual-gc", "--manual-gc-interval 10", "--overlap-moe-expert-parallel-comm",
    "--delay-wgrad-compute", "--mtp-num-layers 1", "--mtp-loss-scaling-factor 0.1",
    "--pipeline-model-parallel-layout Et|(tt|)*30mL", "--enable-experimental",
]


def argv_text(version: str) -> tuple[str, list[str]]:
    exp = load_experiment("h100", "deepseek-v3", [f"profile.megatron_version={version}"])
    args = build(exp, "/runs/x")
    return " ".join(args.argv), args.warnings


@pytest.mark.parametrize("version", ["0.15.0", "0.18.0", "0.19.2"])
def test_every_key_configuration_is_present(version: str) -> None:
    text, _ = argv_text(version)
    for flag in GUIDE_FLAGS_ANY_VERSION:
        assert flag in text, flag
    assert "--no-rope-fusion" not in text and "--moe-router-force-load-balancing" not in text


def test_guide_flags_kept_for_an_old_megatron() -> None:
    text, warnings = argv_text("0.15.0")
    assert "--moe-enable-deepep" in text and "--moe-router-padding-for-fp8" in text
    assert "--cross-entropy-fusion-impl te" in text and warnings == []


def test_ce_te_is_translated_from_0_18_2_with_a_reason() -> None:
    text, warnings = argv_text("0.18.2")
    assert "--cross-entropy-fusion-impl native" in text and "--cross-entropy-fusion-impl te" not in text
    assert any("stability issues" in w and "0.18.2" in w for w in warnings)
    assert "--cross-entropy-fusion-impl te" in argv_text("0.18.0")[0]


def test_deprecated_deepep_and_padding_flags_use_the_new_form() -> None:
    text, warnings = argv_text("0.19.2")
    assert "--moe-flex-dispatcher-backend deepep" in text and "--moe-enable-deepep" not in text
    assert "--moe-router-padding-for-quantization" in text and "--moe-router-padding-for-fp8" not in text
    assert len(warnings) == 3


def test_translate_leaves_unrelated_flags_alone() -> None:
    argv, warnings = translate(["--cross-entropy-fusion-impl", "native", "--te"], Target("0.19.2", "profile"))
    assert argv == ["--cross-entropy-fusion-impl", "native", "--te"] and warnings == []


def test_exit_duration_leaves_the_margin_before_the_time_limit() -> None:
    exp = load_experiment("h100", "deepseek-v3", ["profile.time_limit=02:00:00", "training.exit_margin_minutes=15"])
    argv = build(exp, "/r").argv
    assert argv[argv.index("--exit-duration-in-mins") + 1] == "105"
    assert "--exit-duration-in-mins" not in build(load_experiment("local", "dsv3-proxy-3l"), "/r").argv


@pytest.mark.parametrize("text, minutes", [("04:00:00", 240), ("1-00:00:00", 1440), ("30", 30), ("10:30", 11)])
def test_time_limit_minutes(text: str, minutes: int) -> None:
    assert time_limit_minutes(text) == minutes


def test_bundled_entry_or_megatron_checkout() -> None:
    exp = load_experiment("h100", "deepseek-v3", ["profile.megatron_path=/opt/megatron-lm/"])
    assert entry_command(exp)[-1] == "/opt/megatron-lm/pretrain_gpt.py"
    assert entry_command(load_experiment("h100", "deepseek-v3"))[-2:] == ["-m", "orchestrator.train"]


def test_parse_version() -> None:
    assert parse_version("0.19.2rc1") == (0, 19, 2) and parse_version("0.18") == (0, 18, 0)
