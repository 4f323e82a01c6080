"""Bundled training entry: ``python -m orchestrator.train <Megatron arguments>``.

GPT pre-training on the public ``megatron.training`` API of the megatron-core wheel (0.17+; the GPU
machines run 0.19.2): ``pretrain`` with a model provider on megatron.core's layer specs (MLA, MoE,
MTP), mock or indexed data through ``BlendedMegatronDatasetBuilder``, and the tokenizer Megatron's
``build_tokenizer`` makes (NullTokenizer, HuggingFaceTokenizer, ...). Importing this module needs
the standard library only; ``main`` imports torch and megatron and prints one error line when they
are missing. Rank 0 prints timestamps since process start: imports, init, model build, iteration 1.
"""

from __future__ import annotations

import time

_MODULE_START = time.time()

import dataclasses  # noqa: E402
import inspect  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from functools import partial  # noqa: E402
from typing import Any, Callable, Iterator, Sequence  # noqa: E402

from orchestrator.node import megatron_compat  # noqa: E402
from orchestrator.node.megatron_compat import (  # noqa: E402
    dataset_config_kwargs,
    megatron_training_problem,
    missing_megatron_message,
    unsupported_options,
)
from orchestrator.node.megatron_compat import supported_kwargs as compat_kwargs  # noqa: E402
from orchestrator.node.startup import PREFIX, StartupClock, call_once_after, process_start_time  # noqa: E402,F401

EXIT_MEGATRON_MISSING = 2
TOKENIZER_DEFAULTS = {"tokenizer_type": "GPT2BPETokenizer"}
BATCH_KEYS = ("tokens", "labels", "loss_mask", "attention_mask", "position_ids")


class MegatronMissing(RuntimeError):
    """megatron.core / megatron.training cannot be imported; the message is one line."""


# --------------------------------------------------------------------------- helpers (stdlib only)


def log(message: str) -> None:
    """Print ``orchestrator.train: <message>`` on rank 0."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{PREFIX}: {message}", flush=True)


# --------------------------------------------------------------------------- Megatron side


def import_megatron() -> None:
    """Import torch and the megatron modules used below (timed as 'imports')."""
    if problem := megatron_training_problem():  # checked first: importing megatron.core is slow and noisy
        raise MegatronMissing(missing_megatron_message(problem))
    try:
        import torch  # noqa: F401
        import megatron.core  # noqa: F401
        import megatron.training  # noqa: F401
        import megatron.training.training  # noqa: F401
        from megatron.core.datasets import blended_megatron_dataset_builder, gpt_dataset  # noqa: F401
        from megatron.core.models.gpt import gpt_layer_specs, gpt_model  # noqa: F401
    except ImportError as exc:
        raise MegatronMissing(missing_megatron_message(exc)) from exc


def check_supported(args: Any) -> None:
    if problems := unsupported_options(args):
        raise ValueError("; ".join(problems))


def _use_te(args: Any) -> bool:
    return bool(args.transformer_impl == "transformer_engine")


def layer_spec(args: Any, num_experts: int | None) -> Any:
    """One transformer layer's spec (dense when ``num_experts`` is None)."""
    from megatron.core.models.gpt import gpt_layer_specs as specs

    common = dict(
        num_experts=num_experts, moe_grouped_gemm=args.moe_grouped_gemm, qk_layernorm=args.qk_layernorm,
        multi_latent_attention=args.multi_latent_attention, qk_l2_norm=args.qk_l2_norm,
    )
    if _use_te(args):
        return specs.get_gpt_layer_with_transformer_engine_spec(**common)
    return specs.get_gpt_layer_local_spec(normalization=args.normalization, **common)


def decoder_spec(args: Any, config: Any, vp_stage: int | None) -> Any:
    """The decoder's spec: a block spec for MoE (dense/MoE layer pattern), else one layer spec."""
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_decoder_block_spec
    from megatron.core.transformer.spec_utils import import_module

    if args.spec is not None:
        return import_module(args.spec)
    if not args.num_experts:
        return layer_spec(args, None)
    return get_gpt_decoder_block_spec(
        config, use_transformer_engine=_use_te(args), normalization=args.normalization,
        qk_l2_norm=args.qk_l2_norm, vp_stage=vp_stage,
    )


def mtp_spec(args: Any, config: Any, decoder: Any, vp_stage: int | None) -> Any:
    """MTP block spec: MTP layers mirror the last decoder layer (None without --mtp-num-layers)."""
    from megatron.core.models.gpt import gpt_layer_specs as specs

    if args.mtp_num_layers is None:
        return None
    if not hasattr(decoder, "layer_specs"):
        last_layer = decoder
    elif len(decoder.layer_specs) == 0:  # no decoder layer on this stage (custom PP layout)
        last_layer = layer_spec(args, args.num_experts)
    else:
        last_layer = specs.get_gpt_decoder_layer_specs(
            config, use_transformer_engine=_use_te(args), normalization=args.normalization,
            qk_l2_norm=args.qk_l2_norm,
        )[-1]
    return specs.get_gpt_mtp_block_spec(config, last_layer, use_transformer_engine=_use_te(args), vp_stage=vp_stage)


def model_provider(
    clock: StartupClock,
    pre_process: bool = True,
    post_process: bool = True,
    vp_stage: int | None = None,
    config: Any = None,
    pg_collection: Any = None,
) -> Any:
    """Build one GPTModel stage from megatron.core's layer specs."""
    if "model_start" not in clock.marks:
        log(f"megatron initialised after {clock.mark('model_start'):.1f} s; building the model")
    from megatron.core.models.gpt import GPTModel
    from megatron.training import get_args
    from megatron.training.arguments import core_transformer_config_from_args

    args = get_args()
    check_supported(args)
    if config is None:
        config = core_transformer_config_from_args(args)
    decoder = decoder_spec(args, config, vp_stage)
    model_kwargs = dict(
        config=config, transformer_layer_spec=decoder, vocab_size=args.padded_vocab_size,
        max_sequence_length=args.max_position_embeddings, pre_process=pre_process,
        post_process=post_process, fp16_lm_cross_entropy=args.fp16_lm_cross_entropy,
        parallel_output=True,
        share_embeddings_and_output_weights=not args.untie_embeddings_and_output_weights,
        position_embedding_type=args.position_embedding_type, rotary_percent=args.rotary_percent,
        rotary_base=args.rotary_base, rope_scaling=args.use_rope_scaling,
        seq_len_interpolation_factor=args.rotary_seq_len_interpolation_factor,
        mtp_block_spec=mtp_spec(args, config, decoder, vp_stage),
        vp_stage=vp_stage, pg_collection=pg_collection,
    )
    model = GPTModel(**compat_kwargs(GPTModel.__init__, model_kwargs))
    log(f"model built after {clock.mark('model_built'):.1f} s")
    return model


def _mtp_on_this_rank(config: Any, vp_stage: int | None) -> bool:
    from megatron.core.transformer.multi_token_prediction import mtp_on_this_rank

    if "layout" in inspect.signature(mtp_on_this_rank).parameters:  # 0.18 and later
        return bool(mtp_on_this_rank(
            config.pipeline_model_parallel_layout, config.mtp_num_layers,
            ignore_virtual=False, vp_stage=vp_stage,
        ))
    return bool(mtp_on_this_rank(config, ignore_virtual=False, vp_stage=vp_stage))


def get_batch(
    data_iterator: Iterator[dict[str, Any]] | None, vp_stage: int | None, mtp_here: bool
) -> list[Any]:
    """tokens, labels, loss_mask, attention_mask, position_ids of this rank's micro-batch."""
    from megatron.core import parallel_state as mpu
    from megatron.core import utils as core_utils
    from megatron.training import get_args
    from megatron.training.utils import is_first_or_last_pipeline_stage

    if not is_first_or_last_pipeline_stage(vp_stage) and not mtp_here:
        return [None] * len(BATCH_KEYS)
    args = get_args()
    tp_fn = getattr(core_utils, "get_batch_on_this_tp_rank", None)
    if tp_fn is None:  # 0.17: the helper reads the iterator itself
        from megatron.training.utils import get_batch_on_this_tp_rank

        batch = get_batch_on_this_tp_rank(data_iterator, mtp_on_this_rank=mtp_here)
    else:
        tp_rank = mpu.get_tensor_model_parallel_rank()
        batch = {}
        if tp_rank == 0 and data_iterator is not None:
            raw = next(data_iterator)
            batch = {key: raw[key].cuda(non_blocking=True) if raw.get(key) is not None else None for key in BATCH_KEYS}
        batch = tp_fn(**compat_kwargs(tp_fn, dict(
            batch=batch, has_cu_seqlens=False, is_sft=False, is_hybrid_cp=False,
            create_attention_mask_in_dataloader=args.create_attention_mask_in_dataloader,
            broadcast_src_rank=mpu.get_tensor_model_parallel_src_rank(),
            broadcast_group=mpu.get_tensor_model_parallel_group(), cp_size=args.context_parallel_size,
            tp_rank=tp_rank, micro_batch_size=args.micro_batch_size, seq_length=args.seq_length,
            mtp_on_this_rank=mtp_here, pipeline_model_parallel_size=args.pipeline_model_parallel_size,
            is_pipeline_first_stage=mpu.is_pipeline_first_stage(),
            is_pipeline_last_stage=mpu.is_pipeline_last_stage(),
        )))
    cp_fn = core_utils.get_batch_on_this_cp_rank
    batch = cp_fn(**compat_kwargs(cp_fn, dict(
        batch=batch, is_hybrid_cp=False, cp_group=mpu.get_context_parallel_group(),
    )))
    return [batch.get(key) for key in BATCH_KEYS]


def loss_func(loss_mask: Any, output_tensor: Any) -> tuple[Any, Any, dict[str, Any]]:
    """Sum of masked token losses, token count, and the 'lm loss' report."""
    import torch

    losses = output_tensor.view(-1).float()
    mask = loss_mask.view(-1).float()
    loss = torch.sum(losses * mask)
    num_tokens = mask.sum().clone().detach().to(torch.int)
    report = {"lm loss": torch.cat([loss.clone().detach().view(1), num_tokens.view(1)])}
    return loss, num_tokens, report


def forward_step(
    data_iterator: Iterator[dict[str, Any]] | None, model: Any, return_schedule_plan: bool = False
) -> tuple[Any, Callable[..., Any]]:
    """One micro-batch forward; with --overlap-moe-expert-parallel-comm Megatron asks for a plan."""
    from megatron.core.utils import get_attr_wrapped_model, get_model_config
    from megatron.training import get_timers

    timers = get_timers()
    vp_stage = get_attr_wrapped_model(model, "vp_stage")
    timers("batch-generator", log_level=2).start()
    tokens, labels, loss_mask, attention_mask, position_ids = get_batch(
        data_iterator, vp_stage, _mtp_on_this_rank(get_model_config(model), vp_stage)
    )
    timers("batch-generator").stop()
    if return_schedule_plan:
        plan = model.build_schedule_plan(tokens, position_ids, attention_mask, labels=labels, loss_mask=loss_mask)
        return plan, partial(loss_func, loss_mask)
    output = model(tokens, position_ids, attention_mask, labels=labels, loss_mask=loss_mask)
    return output, partial(loss_func, loss_mask)


def train_valid_test_datasets_provider(num_samples: list[int], vp_stage: int | None = None) -> tuple[Any, Any, Any]:
    """Mock data (--mock-data) or indexed datasets (--data-path / --*-data-path)."""
    from megatron.core import parallel_state as mpu
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig, MockGPTDataset
    from megatron.training import get_args, get_tokenizer
    from megatron.training.utils import get_blend_and_blend_per_split, is_first_or_last_pipeline_stage

    args = get_args()
    check_supported(args)
    tokenizer = get_tokenizer()
    if tokenizer is None:
        from megatron.core.tokenizers.utils.build_tokenizer import build_tokenizer

        tokenizer = build_tokenizer(args)
    blend, blend_per_split = get_blend_and_blend_per_split(args)
    names = [f.name for f in dataclasses.fields(GPTDatasetConfig) if f.init]
    config = GPTDatasetConfig(
        blend=blend, blend_per_split=blend_per_split, tokenizer=tokenizer,
        **dataset_config_kwargs(args, names),
    )

    def built_here() -> bool:
        return bool(is_first_or_last_pipeline_stage(vp_stage) and mpu.get_tensor_model_parallel_rank() == 0)

    dataset_type = MockGPTDataset if args.mock_data else GPTDataset
    log(f"building {dataset_type.__name__} splits of {num_samples} samples")
    splits: tuple[Any, Any, Any] = BlendedMegatronDatasetBuilder(dataset_type, num_samples, built_here, config).build()
    return splits


train_valid_test_datasets_provider.is_distributed = True  # type: ignore[attr-defined]  # Megatron reads this flag


def _on_first_iteration(clock: StartupClock) -> None:
    import torch

    torch.cuda.synchronize()
    clock.mark("first_iteration")
    if int(os.environ.get("RANK", "0")) == 0:
        print(clock.first_iteration_line(), flush=True)
        print(clock.rest_line(), flush=True)


def install_hooks(clock: StartupClock) -> None:
    """Megatron's own startup timers, and a hook at the end of the first train step."""
    import megatron.training as training_api
    from megatron.training import training

    set_startup = getattr(training_api, "set_startup_timestamps", None)
    if set_startup is not None:
        set_startup(program_start=clock.start, main_entry=clock.marks["imported"])
    if hasattr(training, "train_step"):
        training.train_step = call_once_after(training.train_step, partial(_on_first_iteration, clock))
    else:
        log("note: megatron.training.training has no train_step; no first-iteration timing")


def run_pretrain(argv: Sequence[str], clock: StartupClock) -> None:
    """Hand ``argv`` to Megatron's parser and run ``pretrain`` with this module's providers."""
    from megatron.core.enums import ModelType
    from megatron.training import pretrain

    sys.argv = [sys.argv[0], *argv]
    install_hooks(clock)
    kwargs: dict[str, Any] = dict(
        train_valid_test_dataset_provider=train_valid_test_datasets_provider,
        model_provider=partial(model_provider, clock), model_type=ModelType.encoder_or_decoder,
        forward_step_func=forward_step,
    )
    if "cfg_container" in inspect.signature(pretrain).parameters:  # 0.18 and later
        from megatron.training.argument_utils import pretrain_cfg_container_from_args
        from megatron.training.arguments import parse_and_validate_args

        args = parse_and_validate_args(args_defaults=TOKENIZER_DEFAULTS)
        check_supported(args)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"\s*It is recommended to use a ModelConfig")
            kwargs["cfg_container"] = pretrain_cfg_container_from_args(args)
    else:
        kwargs["args_defaults"] = TOKENIZER_DEFAULTS
    pretrain(**kwargs)


def stacks_on_sigusr2() -> None:
    """Every thread's stack into the node entry's file for this rank when the watchdog asks (SIGUSR2)."""
    import faulthandler
    import signal

    if path := os.environ.get("ORCHESTRATOR_STACKS"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        faulthandler.register(signal.SIGUSR2, file=open(path, "a"), all_threads=True)  # noqa: SIM115 (kept open)


def main(argv: Sequence[str] | None = None) -> int:
    clock = StartupClock(process_start_time(_MODULE_START))
    stacks_on_sigusr2()
    report = megatron_compat.prepare(list(sys.argv[1:] if argv is None else argv))
    try:
        import_megatron()
    except MegatronMissing as exc:
        print(exc, file=sys.stderr, flush=True)
        return EXIT_MEGATRON_MISSING
    log(f"imports done after {clock.mark('imported'):.1f} s")
    for message in report.messages:
        log(message.removeprefix(f"{PREFIX}: "))
    if report.skip_compile_helpers:  # read-only install or no make: the helper is prebuilt anyway
        from megatron.core.datasets import utils as dataset_utils

        dataset_utils.compile_helpers = lambda: None
    run_pretrain(report.argv, clock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
