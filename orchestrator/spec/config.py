"""Typed configuration: cluster profiles, training recipes, and the experiment that joins them.

Profiles and recipes are YAML files loaded into these dataclasses; every field carries a one-line doc
(``schema.field_doc``), unknown keys are errors, and ``--set dotted.key=value`` overrides are type-checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from . import machine, package_data
from .yamltext import load_yaml, parse_value
from .schema import ConfigError, doc, from_dict, merge, nested, set_path, to_dict

PROFILES_ENV = "ORCHESTRATOR_PROFILES_DIR"
RECIPES_ENV = "ORCHESTRATOR_RECIPES_DIR"


@dataclass
class ContainerConfig:
    """How pyxis/enroot runs the job's container (ignored by profiles without a container)."""

    image: str | None = doc(None, "container image for pyxis --container-image (squashfs path or registry URI)")
    mounts: list[str] = doc([], "bind mounts for --container-mounts, each 'SRC:DST' or 'SRC:DST:ro'")
    workdir: str | None = doc(None, "working directory inside the container (--container-workdir)")
    mount_home: bool = doc(False, "mount $HOME into the container (false adds --no-container-mount-home)")
    writable: bool = doc(True, "make the container root file system writable (--container-writable)")


@dataclass
class ClusterProfile:
    """One cluster: where and how jobs run, and the environment its network needs."""

    name: str = doc("", "profile name (the YAML file's stem)", name=True)
    description: str = doc("", "one line shown by `orchestrator profiles`")
    scheduler: Literal["slurm", "local"] = doc("slurm", "slurm submits with sbatch; local runs processes here")
    account: str | None = doc(None, "Slurm account (#SBATCH --account)")
    partition: str | None = doc(None, "Slurm partition (#SBATCH --partition)")
    qos: str | None = doc(None, "Slurm QoS (#SBATCH --qos)")
    reservation: str | None = doc(None, "Slurm reservation (#SBATCH --reservation)")
    nodes: int = doc(1, "nodes per job (the one home of the node count; a recipe may only check it)", lo=1, hi=100000)
    gpus_per_node: int = doc(8, "GPUs per node; one training rank per GPU. `auto` (local scheduler): this machine's "
                             "GPUs, counted (CUDA_VISIBLE_DEVICES, else nvidia-smi), 2 CPU ranks where it has none",
                             lo=1, hi=64)
    gpu: str | None = doc(None, "GPU type for `estimate`/`plan` and the memory guard rail: h100, h200, b200, gb200, "
                          "a100 (empty = unknown: no memory check). `auto` (local scheduler): this machine's GPU")
    gpu_request: Literal["gpus-per-node", "gres", "none"] = doc(
        "gpus-per-node", "how GPUs are requested: --gpus-per-node=N, --gres=gpu:N, or not at all")
    cpus_per_task: int | None = doc(None, "CPUs per rank (#SBATCH --cpus-per-task)", lo=1, hi=4096)
    mem: str | None = doc("0", "memory per node (#SBATCH --mem; '0' = all of it)")
    time_limit: str = doc("04:00:00", "wall-clock limit per job or segment, HH:MM:SS or D-HH:MM:SS")
    exclusive: bool = doc(True, "request whole nodes (#SBATCH --exclusive)")
    segment: int | Literal["auto"] | None = doc(
        None, "nodes a job keeps inside one NVLink domain (#SBATCH --segment, GB200 NVL72; needs Slurm >= 23.11): a "
        "count, or auto = EP × TP / GPUs per node as the seed's GB200 launch (SEGMENT = EP × TP / 4) where that "
        "divides the nodes, else the largest divisor of the node count that fits a rack (18 nodes)")
    retries: int = doc(2, "transient failures requeued per job (NCCL timeouts, a lost node, preemption, I/O, a "
                       "hang); attempts that saved a new checkpoint do not count; 0 = never", lo=0, hi=100)
    retry_backoff_s: int = doc(60, "seconds before a retry starts, doubled per spent retry", lo=0, hi=86400)
    hang_factor: float = doc(10.0, "hung: this many median iteration times without a new one", lo=2, hi=10000)
    hang_floor_s: int = doc(900, "never hung sooner than this after the last iteration (saves pause)", lo=1, hi=864000)
    hang_startup_s: int = doc(1800, "seconds allowed to the first iteration (else hung)", lo=1, hi=864000)
    checkpoint_write_gb_s: float = doc(20.0, "GB/s a checkpoint is written at (validate warns when the exit margin "
                                       "is shorter than one save)", lo=0.001, hi=1e5)
    max_array_parallel: int = doc(8, "array tasks allowed to run at once (the %N of --array)", lo=1, hi=100000)
    container: ContainerConfig = nested(ContainerConfig, "pyxis/enroot container settings")
    env: dict[str, str] = doc({}, "environment for every rank: NCCL/network/UCX settings of this cluster (no secrets)")
    env_passthrough: list[str] = doc([], "variables (secrets) every rank copies by name from the submitting shell, "
                                     "besides WANDB_API_KEY, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, NGC_API_KEY")
    bindpcie_path: str | None = doc(None, "path of NVIDIA mlperf-common bindpcie; empty = built-in NUMA binding")
    megatron_path: str | None = doc(None, "Megatron-LM checkout in the container; empty = bundled training entry")
    megatron_version: str | None = doc(None, "megatron-core version the job runs (e.g. 0.19.2); empty = detect")
    te_version: str = doc("2.20.2", "Transformer Engine version in the job's image: Megatron's argument check asks "
                          "it (2.20.2: the version proven with megatron-core 0.19.2 on the GPU machines)")
    python: str = doc("python3", "Python interpreter on the compute nodes")
    output_root: str = doc("runs", "directory for run directories (logs, records, checkpoints)")
    default_recipe: str = doc("deepseek-v3", "recipe used when none is given (--recipe, RECIPE in run.sh)")
    setup: list[str] = doc([], "shell lines run before srun, written as they are (e.g. 'module load cuda')")
    required: list[str] = doc([], "settings that must be filled before submitting, e.g. profile.account")


@dataclass
class ModelConfig:
    """The network's shape (DeepSeek-V3 by default)."""

    num_layers: int = doc(61, "transformer layers (without MTP)", lo=1, hi=10000)
    first_k_dense: int = doc(3, "leading dense layers before the MoE layers", lo=0, hi=10000)
    hidden_size: int = doc(7168, "model width", lo=1, hi=1000000)
    ffn_hidden_size: int = doc(18432, "dense MLP width", lo=1, hi=10000000)
    num_attention_heads: int = doc(128, "attention heads", lo=1, hi=100000)
    q_lora_rank: int | None = doc(1536, "MLA query low-rank dimension", lo=1, hi=1000000)
    kv_lora_rank: int = doc(512, "MLA key/value low-rank dimension", lo=1, hi=1000000)
    qk_head_dim: int = doc(128, "MLA query/key head dimension without RoPE", lo=1, hi=100000)
    qk_pos_emb_head_dim: int = doc(64, "MLA RoPE part of the query/key head", lo=1, hi=100000)
    v_head_dim: int = doc(128, "MLA value head dimension", lo=1, hi=100000)
    num_experts: int = doc(256, "routed experts per MoE layer", lo=1, hi=100000)
    moe_router_topk: int = doc(8, "experts each token is routed to", lo=1, hi=100000)
    moe_router_num_groups: int = doc(8, "expert groups for group-limited routing", lo=1, hi=100000)
    moe_router_group_topk: int = doc(4, "groups each token may use", lo=1, hi=100000)
    moe_ffn_hidden_size: int = doc(2048, "width of one routed expert", lo=1, hi=10000000)
    moe_shared_expert_intermediate_size: int = doc(2048, "width of the shared expert(s)", lo=0, hi=10000000)
    moe_router_score_function: Literal["sigmoid", "softmax"] = doc("sigmoid", "router score function")
    moe_router_enable_expert_bias: bool = doc(True, "aux-loss-free balancing with a per-expert bias")
    moe_router_topk_scaling_factor: float = doc(2.5, "scale applied to the top-k routing weights", lo=0, hi=1000)
    moe_aux_loss_coeff: float = doc(1.0e-4, "sequence-level auxiliary loss coefficient", lo=0, hi=1000)
    vocab_size: int = doc(129280, "vocabulary size", lo=1, hi=100000000)
    seq_length: int = doc(4096, "training sequence length", lo=1, hi=10000000)
    mtp_num_layers: int = doc(1, "multi-token-prediction layers (used when switches.mtp is on)", lo=1, hi=100)
    mtp_loss_scaling_factor: float = doc(0.1, "weight of the MTP loss", lo=0, hi=1000)
    rotary_scaling_factor: float = doc(40.0, "YaRN RoPE scaling factor of MLA (--rotary-scaling-factor)", lo=0, hi=100000)
    mscale: float = doc(1.0, "YaRN mscale of MLA (--mscale)", lo=0, hi=1000)
    mscale_all_dim: float = doc(1.0, "YaRN mscale over all dimensions of MLA (--mscale-all-dim)", lo=0, hi=1000)
    init_method_std: float = doc(0.02, "standard deviation of the weight initialisation (--init-method-std)", lo=0, hi=10)


@dataclass
class ParallelConfig:
    """How the model is split over GPUs."""

    tp: int = doc(2, "tensor-parallel size", lo=1, hi=100000)
    pp: int = doc(8, "pipeline-parallel size", lo=1, hi=100000)
    vpp: int = doc(4, "virtual pipeline stages per pipeline rank (1 = none)", lo=1, hi=100000)
    cp: int = doc(1, "context-parallel size", lo=1, hi=100000)
    ep: int = doc(64, "expert-parallel size", lo=1, hi=100000)
    etp: int = doc(1, "expert tensor-parallel size", lo=1, hi=100000)
    pipeline_layout: str | None = doc("Et|(tt|)*30mL", "flexible PP layout (E embedding, t layer, m MTP, L loss), in "
                                      "force when given; empty = an even split of the layers")
    sequence_parallel: bool = doc(True, "sequence parallelism with TP > 1")
    distributed_optimizer: bool = doc(True, "shard optimizer states over data-parallel ranks")
    overlap_grad_reduce: bool = doc(True, "overlap the data-parallel gradient reduce with the backward pass")
    overlap_param_gather: bool = doc(True, "overlap the distributed optimizer's parameter all-gather with the "
                                     "forward pass (needs overlap_grad_reduce)")


@dataclass
class TrainingConfig:
    """Batch, schedule, data and output."""

    micro_batch_size: int = doc(1, "sequences per micro-batch", lo=1, hi=1000000)
    global_batch_size: int = doc(8192, "sequences per optimizer step", lo=1, hi=1000000000)
    train_iters: int = doc(500, "optimizer steps", lo=1, hi=1000000000000)
    lr: float = doc(1.0e-4, "peak learning rate", lo=0, hi=10)
    min_lr: float = doc(1.0e-5, "final learning rate", lo=0, hi=10)
    lr_warmup_iters: int = doc(0, "warm-up steps", lo=0, hi=1000000000000)
    lr_decay_iters: int | None = doc(None, "steps of the cosine decay from lr to min_lr; empty = train_iters",
                                     lo=1, hi=1000000000000)
    weight_decay: float = doc(0.1, "weight decay", lo=0, hi=100)
    clip_grad: float = doc(1.0, "gradient clipping norm", lo=0, hi=1000000)
    seed: int = doc(1234, "random seed", lo=0, hi=2147483647)
    data_path: list[str] = doc([], "Megatron indexed-dataset prefixes (with weights); empty = mock data")
    tokenizer_type: str = doc("NullTokenizer", "Megatron tokenizer type (HuggingFaceTokenizer for a real one)")
    tokenizer_model: str | None = doc(None, "tokenizer path or HF name for HuggingFaceTokenizer")
    log_interval: int = doc(1, "iterations between log lines", lo=1, hi=1000000000000)
    eval_interval: int = doc(1000000, "iterations between evaluations", lo=1, hi=1000000000000)
    eval_iters: int = doc(0, "evaluation iterations", lo=0, hi=1000000000000)
    save_interval: int | None = doc(None, "iterations between checkpoints; empty = train_iters (a checkpoint at the "
                                    "end, and Megatron saves too where --exit-duration-in-mins stops a segment)",
                                    lo=1, hi=1000000000000)
    lr_warmup_init: float = doc(0.0, "learning rate at the start of the warm-up", lo=0, hi=10)
    adam_beta1: float = doc(0.9, "Adam beta1", lo=0, hi=1)
    adam_beta2: float = doc(0.95, "Adam beta2 (DeepSeek-V3: 0.95; Megatron's default is 0.999)", lo=0, hi=1)
    num_workers: int = doc(2, "data-loader worker processes per rank", lo=0, hi=1024)
    distributed_timeout_minutes: int = doc(10, "timeout of torch.distributed collectives, in minutes", lo=1, hi=100000)
    checkpoint_dir: str | None = doc(None, "checkpoint directory (--save and --load); empty = <run dir>/checkpoints")
    exit_margin_minutes: int = doc(10, "stop and save this many minutes before the time limit", lo=0, hi=100000)
    wandb_project: str | None = doc(None, "Weights & Biases project (the key comes from $WANDB_API_KEY)")
    extra_args: list[str] = doc([], "further Megatron arguments, passed as they are (checked by Megatron)")


@dataclass
class Switches:
    """The seed guide's key configurations for DeepSeek-V3 speed, each one on/off."""

    moe_grouped_gemm: bool = doc(True, "grouped GEMM for the experts (--moe-grouped-gemm)")
    moe_fusions: bool = doc(True, "fp32 router with permute and router fusions (MoE related optimizations)")
    token_dispatcher: Literal["alltoall", "allgather", "flex"] = doc("flex", "MoE token dispatcher")
    deepep: bool = doc(True, "DeepEP all-to-all kernels (needs the flex dispatcher; falls back when missing)")
    fine_grained_recompute: bool = doc(True, "selective recompute of recompute_modules only")
    recompute_modules: list[str] = doc(["mla_up_proj", "mlp"], "modules recomputed with fine-grained recompute")
    ce_loss_fusion: bool = doc(True, "fused cross-entropy loss")
    ce_fusion_impl: Literal["te", "native"] = doc("te", "CE fusion kernel ('te' is refused by megatron-core >= 0.18.2)")
    fp8_blockwise: bool = doc(True, "DeepSeek FP8 recipe: --fp8-recipe blockwise --fp8-format e4m3")
    fp8_param_gather: bool = doc(True, "FP8 primary weights, gathered in FP8 (needs FP8 + distributed optimizer)")
    bf16_optimizer_states: bool = doc(True, "precision-aware optimizer with bf16 Adam moments")
    manual_gc: bool = doc(True, "manual garbage collection to avoid GC inside an iteration")
    manual_gc_interval: int = doc(10, "iterations between manual GC runs", lo=1, hi=1000000000000)
    ep_a2a_overlap: bool = doc(True, "overlap expert-parallel all-to-all with compute")
    delay_wgrad_compute: bool = doc(True, "delay weight-gradient compute to overlap A2A (needs ep_a2a_overlap)")
    mtp: bool = doc(True, "multi-token prediction layers (model.mtp_num_layers)")
    experimental: bool = doc(True, "--enable-experimental (MLA RoPE fusion, fused indices-to-multihot)")
    rope_fusion: bool = doc(True, "MLA RoPE fusion (false adds --no-rope-fusion)")
    router_padding_for_fp8: bool = doc(True, "pad the routing map for FP8 grouped GEMM")
    force_load_balancing: bool = doc(False, "force balanced routing: for benchmarks only, never for real training")
    cuda_graphs: bool = doc(False, "TE CUDA graphs of attention (--cuda-graph-impl transformer_engine)")
    nan_check: bool = doc(False, "check every loss and gradient for NaN/Inf (Megatron's default; the seed's "
                          "launch turns it off: --no-check-for-nan-in-loss-and-grad)")
    flex_dispatcher_num_sms: int | None = doc(None, "SMs DeepEP's dispatch/combine kernels use "
                                              "(--moe-flex-dispatcher-num-sms); empty = DeepEP's default (20)", lo=1, hi=1024)


@dataclass
class ProfilingConfig:
    """One-flag profiling of a run (``submit --profile-steps A-B``): Megatron's torch-profiler and memory history."""

    steps: str | None = doc(None, "iterations to trace, A-B (Megatron's --profile-step-start A --profile-step-end "
                                  "B: iterations A+1..B); empty = no profiling. Traces land in <run dir>/torch_profile")
    ranks: list[int] = doc([0], "global ranks that trace (--profile-ranks); empty = every rank")
    memory_snapshot: bool = doc(False, "record the allocator's history; the last rank writes "
                                       "<run dir>/memory-snapshot.pickle (torch.cuda.memory._dump_snapshot format)")


def profile_steps(text: str) -> tuple[int, int]:
    """``"5-7"`` → (5, 7): the one parser of ``profiling.steps``; ValueError naming what is wrong."""
    start, sep, end = text.partition("-")
    if not sep or not start.strip().isdigit() or not end.strip().isdigit():
        raise ValueError(f"{text!r} is not A-B (two iteration numbers)")
    first, last = int(start), int(end)
    if not 0 < first < last:
        raise ValueError(f"{text!r}: A must be at least 1 and below B")
    return first, last


@dataclass
class Recipe:
    """A named training configuration: model, parallelism, training and the guide's switches."""

    name: str = doc("", "recipe name", name=True)
    description: str = doc("", "one line shown by `orchestrator recipes`")
    nodes: int | None = doc(None, "nodes this recipe is built for: validation refuses another profile.nodes; "
                             "empty = any", lo=1, hi=100000)
    model: ModelConfig = nested(ModelConfig, "the network's shape")
    parallel: ParallelConfig = nested(ParallelConfig, "how the model is split over GPUs")
    training: TrainingConfig = nested(TrainingConfig, "batch, schedule, data and output")
    switches: Switches = nested(Switches, "the seed guide's key configurations")
    profiling: ProfilingConfig = nested(ProfilingConfig, "traces and memory snapshots of the run")
    env: dict[str, str] = doc({}, "environment the recipe's runs set (CUDA_DEVICE_MAX_CONNECTIONS, NVTE_*, NCCL_*)")


@dataclass
class Experiment:
    """A profile and a recipe joined: everything needed to render and launch one run."""

    profile: ClusterProfile
    recipe: Recipe

    @property
    def nodes(self) -> int:
        """Nodes per job: always the profile's (``recipe.nodes`` is checked against it by validation)."""
        return self.profile.nodes

    @property
    def world_size(self) -> int:
        return self.nodes * self.profile.gpus_per_node

    @property
    def segment(self) -> int | None:
        """The ``#SBATCH --segment`` this job asks for (``profile.segment`` with ``auto`` resolved)."""
        seg, p = self.profile.segment, self.recipe.parallel
        if seg != "auto":
            return seg
        seed = p.ep * p.tp // self.profile.gpus_per_node
        if 1 <= seed <= RACK_NODES and self.nodes % seed == 0:
            return seed
        return max(d for d in range(1, RACK_NODES + 1) if self.nodes % d == 0)


RACK_NODES = 18
"""Nodes of one GB200 NVL72 rack (72 GPUs, 4 per node): the largest segment Slurm can keep in one NVLink domain."""


def search_dirs(kind: Literal["profiles", "recipes"], extra: str | Path | None) -> list[Path]:
    """Directories searched for profiles/recipes: --*-dir, then the environment variable, then built-ins."""
    variable = PROFILES_ENV if kind == "profiles" else RECIPES_ENV
    env = os.environ.get(variable)
    given = ((f"${variable}" if extra is not None and str(extra) == env else f"--{kind}-dir", extra),
             (f"${variable}", env))
    if extra is not None and not str(extra).strip():
        raise ConfigError(f"--{kind}-dir", "is empty (an unset variable?): the built-in ones would be used silently",
                          f"name a directory of {kind}, or leave the option out")
    dirs = [_existing_dir(flag, Path(d)) for flag, d in given if d]
    dirs.append(package_data.profiles_dir() if kind == "profiles" else package_data.recipes_dir())
    return dirs


def _existing_dir(flag: str, path: Path) -> Path:
    """A directory the user named: refused when missing or not a directory (never silently skipped)."""
    if not path.exists():
        raise ConfigError(flag, f"{path} does not exist", "give an existing directory, or leave it unset")
    if not path.is_dir():
        raise ConfigError(flag, f"{path} is not a directory", "give the directory holding the YAML files")
    return path


def find_file(kind: Literal["profiles", "recipes"], name: str, extra: str | Path | None = None) -> Path:
    """Path of a named profile/recipe (or a path given directly)."""
    as_path = Path(name)
    if as_path.suffix in (".yaml", ".yml") and as_path.exists():
        return as_path
    for directory in search_dirs(kind, extra):
        for suffix in (".yaml", ".yml"):
            if (candidate := directory / f"{name}{suffix}").exists():
                return candidate
    known = ", ".join(list_names(kind, extra)) or "none"
    flag = "--profile" if kind == "profiles" else "--recipe"
    raise ConfigError(flag, f"no {kind[:-1]} named {name!r}", f"use one of: {known}")


def list_names(kind: Literal["profiles", "recipes"], extra: str | Path | None = None) -> list[str]:
    """Every profile/recipe name visible from the search directories (first one wins)."""
    names: dict[str, Path] = {}
    for directory in search_dirs(kind, extra):
        for path in sorted(directory.glob("*.y*ml")) if directory.is_dir() else []:
            names.setdefault(path.stem, path)
    return sorted(names)


def resolve_raw(kind: Literal["profiles", "recipes"], name: str, extra: str | Path | None,
                seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The raw mapping of a profile/recipe with its ``extends:`` chain merged in."""
    if name in seen:
        raise ConfigError(f"{name}.extends", f"cycle {' -> '.join(seen + (name,))}", "remove the loop")
    path = find_file(kind, name, extra)
    data = load_yaml(path)
    parent = data.pop("extends", None)
    data.setdefault("name", path.stem)
    if parent is None:
        return data
    try:
        base = resolve_raw(kind, str(parent), extra, seen + (name,))
    except ConfigError as err:
        if err.setting not in ("--profile", "--recipe"):
            raise
        raise ConfigError(f"{path}: extends", err.problem, err.fix) from None
    base.pop("description", None)
    return merge(base, data)


def load_profile(name: str, profiles_dir: str | Path | None = None) -> ClusterProfile:
    """Load a cluster profile by name or path, resolving ``extends:``."""
    return profile_from_dict(resolve_raw("profiles", name, profiles_dir))


def profile_from_dict(raw: dict[str, Any]) -> ClusterProfile:
    """A typed profile, ``auto`` GPU settings resolved on this machine (``machine.resolve``)."""
    try:
        resolved = machine.resolve(raw)
    except ValueError as exc:
        raise ConfigError(f"profile.{exc}", "auto counts this machine's GPUs, and a Slurm job's nodes are not this "
                          "machine", f"give it for the nodes (e.g. --set profile.{exc}=8)") from None
    return from_dict(ClusterProfile, resolved, "profile")


def load_recipe(name: str, recipes_dir: str | Path | None = None) -> Recipe:
    """Load a recipe by name or path, resolving ``extends:``."""
    return from_dict(Recipe, resolve_raw("recipes", name, recipes_dir), "recipe")


def parse_override(item: str) -> tuple[str, Any]:
    """``a.b=value`` → (``a.b``, YAML-typed value)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError("--set", f"{item!r} is not key=value", "write e.g. --set parallel.pp=4")
    return key.strip(), parse_value(raw)


def apply_overrides(exp: Experiment, overrides: list[str]) -> Experiment:
    """Apply ``--set`` overrides: ``profile.X=...`` to the profile, anything else to the recipe."""
    profile, recipe = to_dict(exp.profile), to_dict(exp.recipe)
    for item in overrides:
        key, value = parse_override(item)
        target, path = (profile, key[len("profile."):]) if key.startswith("profile.") else (recipe, key)
        set_path(target, path.removeprefix("recipe."), value)
    return Experiment(profile_from_dict(profile), from_dict(Recipe, recipe, "recipe"))


def load_experiment(profile: str, recipe: str | None, overrides: list[str] | None = None,
                    profiles_dir: str | Path | None = None, recipes_dir: str | Path | None = None) -> Experiment:
    """Profile + recipe (None: the profile's default recipe) + overrides, fully typed."""
    prof = load_profile(profile, profiles_dir)
    exp = Experiment(prof, load_recipe(recipe or prof.default_recipe, recipes_dir))
    exp = apply_overrides(exp, overrides or [])
    check_home_paths(exp)
    return exp


def check_home_paths(exp: Experiment) -> None:
    """A ``~user/...`` path whose user does not exist is one line here, not a traceback where it is first used."""
    for setting, value in (("profile.output_root", exp.profile.output_root),
                           ("recipe.training.checkpoint_dir", exp.recipe.training.checkpoint_dir)):
        if value and value.startswith("~"):
            try:
                Path(value).expanduser()
            except RuntimeError as exc:
                raise ConfigError(setting, f"{value[:80]!r}: {exc}", "use an absolute path, or ~/ for your home") from exc

