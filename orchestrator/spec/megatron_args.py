"""Recipe → Megatron command line, for the Megatron version the job targets.

Each switch of the seed guide maps to its flags here (``switch_flags``); the drift table of ``versions`` then
translates what the target version renamed or refuses, and every translation becomes a warning with its reason.
"""

from __future__ import annotations


from dataclasses import dataclass, field

from . import layout as layout_mod
from . import slurm_time
from .config import (
    Experiment, ModelConfig, ParallelConfig, ProfilingConfig, Recipe, Switches, TrainingConfig, profile_steps)
from .megatron_versions import Target, drift_for, resolve_target

Argv = list[str]


@dataclass
class MegatronArgs:
    """The training command's arguments and what was changed to fit the target Megatron."""

    argv: Argv
    target: Target
    warnings: list[str] = field(default_factory=list)


def model_flags(m: ModelConfig, mtp: bool) -> Argv:
    """The DeepSeek-V3 architecture: MLA, MoE with sigmoid group-limited routing, MTP."""
    moe_freq = f"([0]*{m.first_k_dense}+[1]*{m.num_layers - m.first_k_dense})"
    argv = [
        "--num-layers", str(m.num_layers), "--hidden-size", str(m.hidden_size),
        "--ffn-hidden-size", str(m.ffn_hidden_size), "--num-attention-heads", str(m.num_attention_heads),
        "--multi-latent-attention", "--kv-lora-rank", str(m.kv_lora_rank),
        "--qk-head-dim", str(m.qk_head_dim), "--qk-pos-emb-head-dim", str(m.qk_pos_emb_head_dim),
        "--v-head-dim", str(m.v_head_dim), "--qk-layernorm", "--kv-channels", str(m.v_head_dim),
        "--normalization", "RMSNorm", "--norm-epsilon", "1e-6", "--swiglu", "--disable-bias-linear",
        "--untie-embeddings-and-output-weights", "--position-embedding-type", "rope", "--rotary-base", "10000",
        "--attention-dropout", "0.0", "--hidden-dropout", "0.0",
        "--seq-length", str(m.seq_length), "--max-position-embeddings", str(m.seq_length),
        "--num-experts", str(m.num_experts), "--moe-layer-freq", moe_freq,
        "--moe-ffn-hidden-size", str(m.moe_ffn_hidden_size),
        "--moe-shared-expert-intermediate-size", str(m.moe_shared_expert_intermediate_size),
        "--moe-router-topk", str(m.moe_router_topk), "--moe-router-num-groups", str(m.moe_router_num_groups),
        "--moe-router-group-topk", str(m.moe_router_group_topk),
        "--moe-router-score-function", m.moe_router_score_function,
        "--moe-router-topk-scaling-factor", str(m.moe_router_topk_scaling_factor),
        "--moe-router-load-balancing-type", "seq_aux_loss", "--moe-aux-loss-coeff", str(m.moe_aux_loss_coeff),
    ]
    argv += ["--rotary-scaling-factor", _num(m.rotary_scaling_factor), "--mscale", _num(m.mscale),
             "--mscale-all-dim", _num(m.mscale_all_dim), "--init-method-std", _num(m.init_method_std)]
    if m.q_lora_rank is not None:
        argv += ["--q-lora-rank", str(m.q_lora_rank)]
    if m.moe_router_enable_expert_bias:
        argv += ["--moe-router-enable-expert-bias", "--moe-router-bias-update-rate", "1e-3"]
    if mtp and m.mtp_num_layers:
        argv += ["--mtp-num-layers", str(m.mtp_num_layers), "--mtp-loss-scaling-factor", str(m.mtp_loss_scaling_factor)]
    return argv


def parallel_flags(p: ParallelConfig) -> Argv:
    """TP/PP/VPP/CP/EP/ETP, sequence parallelism, the distributed optimizer and the PP layout."""
    argv = [
        "--tensor-model-parallel-size", str(p.tp), "--pipeline-model-parallel-size", str(p.pp),
        "--context-parallel-size", str(p.cp), "--expert-model-parallel-size", str(p.ep),
        "--expert-tensor-parallel-size", str(p.etp),
    ]
    if p.sequence_parallel and p.tp > 1:
        argv.append("--sequence-parallel")
    if p.distributed_optimizer:
        argv.append("--use-distributed-optimizer")
    if p.overlap_grad_reduce:
        argv.append("--overlap-grad-reduce")
    if p.overlap_param_gather:
        argv.append("--overlap-param-gather")
    if layout := layout_mod.in_force(p.pipeline_layout):
        argv += ["--pipeline-model-parallel-layout", layout]
    elif p.vpp > 1:
        argv += ["--num-virtual-stages-per-pipeline-rank", str(p.vpp)]
    return argv


EXIT_SIGNAL = "SIGUSR1"
"""What Megatron's ``--exit-signal-handler`` waits for: the batch script forwards Slurm's pre-limit signal
(``#SBATCH --signal=B:USR1@margin``) to srun, srun to every rank, the node entry to Megatron, which saves at the end
of the iteration it is in and exits 0."""


def training_flags(t: TrainingConfig, run_dir: str, exit_minutes: int | None, vocab_size: int) -> Argv:
    """Batch, schedule, precision, data, logging and checkpointing.

    Checkpoints (``--save``/``--load``) are written when a time limit can end the job (``exit_minutes``) or when
    asked for (``save_interval``/``checkpoint_dir``); a local benchmark run does not spend minutes saving. ``--save``
    never goes without ``--save-interval`` (Megatron refuses it): ``save_interval``, else ``train_iters``.
    """
    argv = [
        "--micro-batch-size", str(t.micro_batch_size), "--global-batch-size", str(t.global_batch_size),
        "--train-iters", str(t.train_iters), "--lr", str(t.lr), "--min-lr", str(t.min_lr),
        "--lr-decay-style", "cosine", "--lr-warmup-iters", str(t.lr_warmup_iters),
        "--lr-decay-iters", str(t.lr_decay_iters or t.train_iters),
        "--lr-warmup-init", str(t.lr_warmup_init), "--adam-beta1", str(t.adam_beta1), "--adam-beta2", str(t.adam_beta2),
        "--weight-decay", str(t.weight_decay), "--clip-grad", str(t.clip_grad), "--bf16", "--seed", str(t.seed),
        "--transformer-impl", "transformer_engine", "--distributed-timeout-minutes", str(t.distributed_timeout_minutes),
        "--num-workers", str(t.num_workers), "--no-create-attention-mask-in-dataloader",
        "--log-interval", str(t.log_interval), "--log-throughput", "--eval-interval", str(t.eval_interval),
        "--eval-iters", str(t.eval_iters), "--tokenizer-type", t.tokenizer_type,
    ]
    if exit_minutes is not None or t.save_interval or t.checkpoint_dir:
        ckpt = t.checkpoint_dir or f"{run_dir}/checkpoints"
        argv += ["--save", ckpt, "--load", ckpt, "--save-interval", str(t.save_interval or t.train_iters)]
    if t.tokenizer_type == "NullTokenizer":
        argv += ["--vocab-size", str(vocab_size), "--make-vocab-size-divisible-by", "128"]
    argv += ["--data-path", *t.data_path, "--split", "99,1,0"] if t.data_path else ["--mock-data"]
    if t.tokenizer_model:
        argv += ["--tokenizer-model", t.tokenizer_model]
    if exit_minutes is not None:  # a Slurm job: a clean stop by the clock, and by the pre-limit signal
        argv += ["--exit-duration-in-mins", str(exit_minutes), "--exit-signal-handler", "--exit-signal", EXIT_SIGNAL]
    if t.wandb_project:
        argv += ["--wandb-project", t.wandb_project, "--wandb-save-dir", f"{run_dir}/wandb"]
    return argv


def switch_flags(s: Switches) -> Argv:
    """The seed guide's key configurations, each switch → its flags, as the guide writes them."""
    argv: Argv = []
    if s.moe_grouped_gemm:
        argv.append("--moe-grouped-gemm")
    if s.moe_fusions:
        argv += ["--moe-router-dtype", "fp32", "--moe-permute-fusion", "--moe-router-fusion"]
    argv += ["--moe-token-dispatcher-type", s.token_dispatcher]
    if s.deepep:
        argv.append("--moe-enable-deepep")
    if s.fine_grained_recompute:
        argv += ["--recompute-granularity", "selective", "--recompute-modules", *s.recompute_modules]
    if s.ce_loss_fusion:
        argv += ["--cross-entropy-loss-fusion", "--cross-entropy-fusion-impl", s.ce_fusion_impl]
    if s.fp8_blockwise:
        argv += ["--fp8-recipe", "blockwise", "--fp8-format", "e4m3"]
    if s.fp8_param_gather:
        argv.append("--fp8-param-gather")
    if s.bf16_optimizer_states:
        argv += ["--use-precision-aware-optimizer", "--main-grads-dtype", "fp32", "--main-params-dtype", "fp32",
                 "--exp-avg-dtype", "bf16", "--exp-avg-sq-dtype", "bf16"]
    if s.manual_gc:
        argv += ["--manual-gc", "--manual-gc-interval", str(s.manual_gc_interval)]
    if s.ep_a2a_overlap:
        argv.append("--overlap-moe-expert-parallel-comm")
    if s.delay_wgrad_compute:
        argv.append("--delay-wgrad-compute")
    if s.experimental:
        argv.append("--enable-experimental")
    if not s.rope_fusion:
        argv.append("--no-rope-fusion")
    if s.router_padding_for_fp8:
        argv.append("--moe-router-padding-for-fp8")
    if s.force_load_balancing:
        argv.append("--moe-router-force-load-balancing")
    if s.cuda_graphs:
        argv += ["--cuda-graph-impl", "transformer_engine", "--cuda-graph-modules", "attn"]
    if not s.nan_check:
        argv.append("--no-check-for-nan-in-loss-and-grad")
    if s.flex_dispatcher_num_sms is not None:
        argv += ["--moe-flex-dispatcher-num-sms", str(s.flex_dispatcher_num_sms)]
    return argv


def overlap_env(s: Switches) -> dict[str, str]:
    """The environment the seed's launch sets with and without EP A2A overlap (sbatch_benchmarking.sh).

    With overlap: 32 device connections and 24 SMs kept free of the layer norms for the communication kernels;
    without: one connection (ordered kernel launches) and no margin. The recipe's and profile's ``env`` win.
    """
    if s.ep_a2a_overlap:
        return {"CUDA_DEVICE_MAX_CONNECTIONS": "32", "NVTE_FWD_LAYERNORM_SM_MARGIN": "24",
                "NVTE_BWD_LAYERNORM_SM_MARGIN": "24"}
    return {"CUDA_DEVICE_MAX_CONNECTIONS": "1", "NVTE_FWD_LAYERNORM_SM_MARGIN": "0",
            "NVTE_BWD_LAYERNORM_SM_MARGIN": "0"}


def _num(value: float) -> str:
    """A float as Megatron's seed writes it: 40.0 → '40', 0.02 → '0.02'."""
    return f"{value:g}"


def translate(argv: Argv, target: Target) -> tuple[Argv, list[str]]:
    """Apply the drift table: rewrite what ``target`` renamed or refuses, with a warning per change."""
    out: Argv = []
    warnings: list[str] = []
    i = 0
    while i < len(argv):
        pair = f"{argv[i]} {argv[i + 1]}" if i + 1 < len(argv) else ""
        for flag, width in ((pair, 2), (argv[i], 1)):
            entry = drift_for(flag, target) if flag else None
            if entry:
                out += entry.replacement.split()
                warnings.append(f"megatron-core {target.version} ({target.source}): {entry.guide_flag} is "
                                f"{entry.kind} since {entry.since}; using {entry.replacement} ({entry.reason})")
                i += width
                break
        else:
            out.append(argv[i])
            i += 1
    return out, warnings


def build(exp: Experiment, run_dir: str, target: Target | None = None) -> MegatronArgs:
    """The full Megatron argument list for an experiment."""
    recipe: Recipe = exp.recipe
    s = recipe.switches
    target = target or resolve_target(exp.profile.megatron_version)
    limit = slurm_time.limit_minutes(exp.profile.time_limit) if exp.profile.scheduler == "slurm" else None
    exit_minutes = max(1, limit - recipe.training.exit_margin_minutes) if limit else None
    argv = (model_flags(recipe.model, s.mtp) + parallel_flags(recipe.parallel)
            + training_flags(recipe.training, run_dir, exit_minutes, recipe.model.vocab_size) + switch_flags(s))
    argv += profiling_flags(recipe.profiling, run_dir)
    argv, warnings = translate(argv, target)
    return MegatronArgs(argv + list(recipe.training.extra_args), target, warnings)


def profiling_flags(p: ProfilingConfig, run_dir: str) -> Argv:
    """Megatron's torch profiler over ``steps`` (its traces go next to ``--tensorboard-dir``:
    ``<run dir>/torch_profile/rank-N.json.gz``) and the allocator's history."""
    argv: Argv = []
    if p.steps:
        first, last = profile_steps(p.steps)
        argv += ["--profile", "--use-pytorch-profiler", "--profile-step-start", str(first),
                 "--profile-step-end", str(last), "--tensorboard-dir", f"{run_dir}/tensorboard"]
        if p.ranks:
            argv += ["--profile-ranks", *map(str, p.ranks)]
    if p.memory_snapshot:
        argv += ["--record-memory-history", "--memory-snapshot-path", f"{run_dir}/memory-snapshot.pickle"]
    return argv


def entry_command(exp: Experiment) -> Argv:
    """What runs per rank before the Megatron arguments: a checkout's pretrain_gpt.py, or the bundled entry."""
    python = exp.profile.python
    if exp.profile.megatron_path:
        return [python, "-u", f"{exp.profile.megatron_path.rstrip('/')}/pretrain_gpt.py"]
    return [python, "-u", "-m", "orchestrator.train"]
