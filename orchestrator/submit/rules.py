"""Every pre-submit rule. Each returns the problems it finds, one line each with the setting and the fix.

Rules are cheap, pure functions of the experiment (well under a second together) so that a 1024-GPU job is never
submitted with a typo that Megatron would reject an hour into the queue.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ..spec import gpus, machine, layout as layout_mod
from ..spec import secret_names, shellsafe, slurm_time
from ..spec.config import Experiment
from ..spec.megatron_versions import parse_version
from .problem import Problem, Rule, Severity
from .resilience import rule_exit_margin
from .rules_args import rule_checkpointing, rule_extra_args, rule_profiling

RECOMPUTE_MODULES = {"core_attn", "moe_act", "layernorm", "mla_up_proj", "mlp", "moe", "shared_experts"}


def data_parallel(exp: Experiment) -> int:
    p = exp.recipe.parallel
    return exp.world_size // (p.tp * p.cp * p.pp)


def rule_resources(exp: Experiment) -> list[Problem]:
    prof, out = exp.profile, []
    if exp.nodes < 1 or prof.gpus_per_node < 1:
        out.append(Problem("nodes/gpus_per_node", f"{exp.nodes} nodes × {prof.gpus_per_node} GPUs", "use at least 1 of each"))
    if exp.recipe.nodes is not None and exp.recipe.nodes != prof.nodes:
        out.append(Problem("nodes", f"recipe {exp.recipe.name} is built for {exp.recipe.nodes} nodes but profile "
                           f"{prof.name} gives {prof.nodes}", f"--set profile.nodes={exp.recipe.nodes}, or "
                           f"--set nodes=null to run the recipe on {prof.nodes} nodes"))
    if prof.scheduler == "local" and exp.nodes != 1:
        out.append(Problem("nodes", f"the local profile runs on this machine only, not {exp.nodes} nodes",
                           "set profile.nodes=1 or use a Slurm profile"))
    here = machine.here() if prof.scheduler == "local" else None
    if here and here.count and prof.gpus_per_node > here.count:
        out.append(Problem("profile.gpus_per_node", f"{prof.gpus_per_node} ranks want a GPU each, this machine has "
                           f"{here.describe()} ({here.source})", f"set profile.gpus_per_node=auto (or {here.count})"))
    if exp.segment and exp.nodes % exp.segment:
        out.append(Problem("profile.segment", f"{exp.nodes} nodes are not whole segments of {exp.segment}",
                           f"use a multiple of {exp.segment} nodes, or profile.segment=auto"))
    for name in prof.required:
        value: object = prof
        for part in name.split("."):
            value = getattr(value, part, None)
        if value in (None, "", []):
            out.append(Problem(f"profile.{name}", f"is empty but profile {prof.name} requires it",
                               f"--set profile.{name}=... (or fill it in run.sh)", "missing"))
    try:
        if slurm_time.limit_minutes(prof.time_limit) <= exp.recipe.training.exit_margin_minutes:
            out.append(Problem("training.exit_margin_minutes", "leaves no time to train before the time limit",
                               "lower the margin or raise profile.time_limit"))
    except ValueError as err:
        out.append(Problem("profile.time_limit", str(err), slurm_time.FIX))
    return out


SBATCH_SETTINGS = ("account", "partition", "qos", "reservation", "mem", "output_root")
"""Profile settings written on ``#SBATCH`` lines (the output root in ``--output``)."""


def rule_rendered_values(exp: Experiment) -> list[Problem]:
    """What rendering would refuse, named by setting: environment names, secrets written as values, passthrough
    names, ``#SBATCH`` values (Slurm profiles)."""
    out = []
    for source, env in (("recipe.env", exp.recipe.env), ("profile.env", exp.profile.env)):
        for name in env:
            if not shellsafe.is_env_name(name):
                out.append(Problem(f"{source}.{name}", "is not a valid environment variable name",
                                   "use [A-Za-z_][A-Za-z0-9_]* (a letter or _ first, no spaces)"))
            elif secret_names.is_secret(name):
                out.append(Problem(f"{source}.{name}", "looks like a secret: its value would be written into "
                                   "sbatch.sh, job.json and record.json", f"remove it, export {name} in your "
                                   "shell and list it in profile.env_passthrough (passed by name only)"))
    if exp.profile.megatron_version:
        try:
            parse_version(exp.profile.megatron_version)
        except ValueError as err:
            out.append(Problem("profile.megatron_version", str(err), "write a version such as 0.19.2, or leave it "
                               "empty to detect it"))
    passed = set(secret_names.passthrough(exp.profile.env_passthrough))
    for name in exp.profile.env_passthrough:
        if not shellsafe.is_env_name(name):
            out.append(Problem("profile.env_passthrough", f"{name!r} is not a valid environment variable name",
                               "use [A-Za-z_][A-Za-z0-9_]*"))
    for source, env in (("recipe.env", exp.recipe.env), ("profile.env", exp.profile.env)):
        for name in sorted(passed & set(env)):
            out.append(Problem(f"{source}.{name}", "is passed through by name (profile.env_passthrough), so no value "
                               "may be written for it", f"remove it from {source} and export {name} in your shell"))
    out += _secrets_in_setup(exp.profile.setup)
    out += _empty_or_unrunnable(exp)
    if pattern := sorted(set(exp.profile.output_root) & set(FILENAME_PATTERN_CHARS)):
        out.append(Problem("profile.output_root", f"{exp.profile.output_root[:80]!r} holds {' '.join(pattern)}, which "
                           "Slurm and submitit expand in log and job paths (%j is the job id): the job's logs would "
                           "land elsewhere, or nowhere", "choose an output root without % or \\"))
    if exp.profile.scheduler == "slurm":
        for setting in SBATCH_SETTINGS:
            value = getattr(exp.profile, setting)
            if value is not None and value != "" and not shellsafe.is_sbatch_safe(str(value)):
                out.append(Problem(f"profile.{setting}", f"{str(value)[:80]!r} cannot be written on an #SBATCH "
                                   "line", f"use {shellsafe.SBATCH_CHARS}"))
    return out


FILENAME_PATTERN_CHARS = "%\\"
"""What Slurm's filename patterns (``--output``, ``--error``, ``--chdir``) and submitit's folder expand: ``%j``,
``%x``, ... and the backslash that escapes them."""

MEMORY = re.compile(r"^[0-9]+[KMGT]?$")
"""A Slurm memory size (``--mem``): a number of megabytes, or with a K, M, G or T suffix; 0 = all of the node's."""


def _empty_or_unrunnable(exp: Experiment) -> list[Problem]:
    """Settings that would be accepted as written and then do nothing, or nothing sensible."""
    p, out = exp.profile, []
    if not p.python.strip():
        out.append(Problem("profile.python", "is empty: no interpreter would run the ranks", "set profile.python=python3"))
    if not exp.recipe.training.tokenizer_type.strip():
        out.append(Problem("training.tokenizer_type", "is empty", "set NullTokenizer, HuggingFaceTokenizer, ..."))
    if p.scheduler == "local" and p.container.image:
        out.append(Problem("profile.container.image", "the local back-end runs no container: the image would be "
                           "ignored", "remove it, or use a Slurm profile with pyxis"))
    if p.mem is not None and p.mem != "" and not MEMORY.fullmatch(p.mem):
        out.append(Problem("profile.mem", f"{p.mem[:40]!r} is not a Slurm memory size", "write e.g. 0 (all), 512G "
                           "or 500000 (MB)"))
    return out


ASSIGNMENT = re.compile(r"(?:^|[\s;&|(])(?:export\s+|declare\s+(?:-\w+\s+)*)?([A-Za-z_][A-Za-z0-9_]*)=")
"""A shell assignment in a setup line (``export HF_TOKEN=...``, ``A=1 cmd``)."""


def _secrets_in_setup(lines: list[str]) -> list[Problem]:
    """A setup line that gives a secret-looking variable a value: it would be written into sbatch.sh, submitit's copy
    and record.json as it is."""
    return [Problem(f"profile.setup[{i}]", f"assigns {name}, which looks like a secret: the line is written into "
                    "sbatch.sh and record.json as it is", f"export {name} in your shell before submitting and list "
                    "it in profile.env_passthrough (passed by name only)")
            for i, line in enumerate(lines) for name in ASSIGNMENT.findall(line) if secret_names.is_secret(name)][:1]


def rule_model_parallel(exp: Experiment) -> list[Problem]:
    p, world, out = exp.recipe.parallel, exp.world_size, []
    if min(p.tp, p.pp, p.cp, p.ep, p.etp, p.vpp) < 1:
        return [Problem("parallel", "sizes must be >= 1", "set tp, pp, vpp, cp, ep, etp to 1 or more")]
    mp = p.tp * p.cp * p.pp
    if world % mp:
        out.append(Problem("parallel.tp/cp/pp", f"TP×CP×PP = {p.tp}×{p.cp}×{p.pp} = {mp} does not divide the "
                           f"world size {world} ({exp.nodes} nodes × {exp.profile.gpus_per_node} GPUs)",
                           f"choose TP×CP×PP dividing {world}, or change the node count"))
    emp = p.etp * p.ep * p.pp
    if world % emp:
        out.append(Problem("parallel.ep", f"ETP×EP×PP = {p.etp}×{p.ep}×{p.pp} = {emp} does not divide the world "
                           f"size {world}", f"choose EP so that ETP×EP×PP divides {world}"))
    if exp.recipe.model.num_attention_heads % p.tp:
        out.append(Problem("parallel.tp", f"{exp.recipe.model.num_attention_heads} heads do not split over TP={p.tp}",
                           "use a TP that divides the head count"))
    if p.cp > 1 and exp.recipe.model.seq_length % (2 * p.cp):
        out.append(Problem("parallel.cp", f"seq {exp.recipe.model.seq_length} not divisible by 2×CP", "change CP"))
    return out


def rule_experts(exp: Experiment) -> list[Problem]:
    m, p, out = exp.recipe.model, exp.recipe.parallel, []
    if m.num_experts % p.ep:
        out.append(Problem("parallel.ep", f"EP={p.ep} does not divide {m.num_experts} experts",
                           f"use an EP that divides {m.num_experts}"))
    if m.num_experts % m.moe_router_num_groups:
        out.append(Problem("model.moe_router_num_groups", f"{m.moe_router_num_groups} groups do not split "
                           f"{m.num_experts} experts", "use a group count dividing the experts"))
    elif m.moe_router_group_topk > m.moe_router_num_groups:
        out.append(Problem("model.moe_router_group_topk", f"{m.moe_router_group_topk} > {m.moe_router_num_groups} groups",
                           "pick at most as many groups as exist"))
    elif m.moe_router_topk > m.moe_router_group_topk * (m.num_experts // m.moe_router_num_groups):
        out.append(Problem("model.moe_router_topk", f"top-{m.moe_router_topk} cannot be filled from "
                           f"{m.moe_router_group_topk} groups", "raise group_topk or lower topk"))
    if not 0 <= m.first_k_dense < m.num_layers:
        out.append(Problem("model.first_k_dense", f"{m.first_k_dense} dense layers of {m.num_layers}",
                           "keep at least one MoE layer"))
    return out


def rule_layout(exp: Experiment) -> list[Problem]:
    r = exp.recipe
    p, s = r.parallel, r.switches
    mtp = r.model.mtp_num_layers if s.mtp else 0
    text = layout_mod.in_force(p.pipeline_layout)
    if text is None:
        if r.model.num_layers % (p.pp * p.vpp):
            return [Problem("parallel.pp/vpp", f"{r.model.num_layers} layers do not split evenly into PP×VPP = "
                            f"{p.pp * p.vpp} stages", "set parallel.pipeline_layout")]
        return []
    try:
        parsed = layout_mod.parse(text)
    except layout_mod.LayoutError as err:
        return [Problem("parallel.pipeline_layout", f"{text!r}: {err}", "use E, t, m, L, | and (...)*n")]
    return [Problem("parallel.pipeline_layout", f"{text!r} {msg}",
                    "make stages = PP×VPP, 't' count = model.num_layers, 'm' count = MTP layers")
            for msg in layout_mod.check(parsed, p.pp, p.vpp, r.model.num_layers, mtp)]


def rule_batch(exp: Experiment) -> list[Problem]:
    t, dp = exp.recipe.training, data_parallel(exp)
    if dp < 1 or exp.world_size % (exp.recipe.parallel.tp * exp.recipe.parallel.cp * exp.recipe.parallel.pp):
        return []
    if t.global_batch_size % (t.micro_batch_size * dp):
        return [Problem("training.global_batch_size", f"GBS {t.global_batch_size} is not a multiple of MBS×DP = "
                        f"{t.micro_batch_size}×{dp}", f"use a multiple of {t.micro_batch_size * dp}, or fewer "
                        f"GPUs: DP comes from {exp.nodes} nodes × {exp.profile.gpus_per_node} GPUs (profile.nodes)")]
    return []


def rule_switches(exp: Experiment) -> list[Problem]:
    s, p, out = exp.recipe.switches, exp.recipe.parallel, []

    def need(cond: bool, setting: str, message: str, fix: str) -> None:
        if not cond:
            out.append(Problem(f"switches.{setting}", message, fix))

    need(not s.deepep or s.token_dispatcher == "flex", "deepep", "DeepEP needs the flex token dispatcher",
         "set switches.token_dispatcher=flex or switches.deepep=false")
    need(s.token_dispatcher != "flex" or s.deepep, "token_dispatcher", "the flex dispatcher needs a backend",
         "set switches.deepep=true or switches.token_dispatcher=alltoall")
    need(s.token_dispatcher != "flex" or p.tp * p.ep > 1, "token_dispatcher", "the flex dispatcher (DeepEP) needs "
         "TP x EP > 1: Megatron asserts 'DeepEP dispatcher requires TPxEP > 1' when it builds the model, after the "
         "job started (seen on 1 x H200)", "set switches.token_dispatcher=alltoall switches.deepep=false, or EP > 1")
    need(not s.fp8_param_gather or s.fp8_blockwise, "fp8_param_gather", "FP8 param gather needs FP8",
         "set switches.fp8_blockwise=true or switches.fp8_param_gather=false")
    gpu = gpus.GPUS.get((exp.profile.gpu or "").lower())
    need(not (s.fp8_blockwise and gpu is not None and gpu.fp8_tflops == 0), "fp8_blockwise",
         f"the {exp.profile.gpu} has no FP8 tensor cores (Transformer Engine refuses FP8 there)",
         "set switches.fp8_blockwise=false switches.fp8_param_gather=false")
    need(not s.fp8_param_gather or p.distributed_optimizer, "fp8_param_gather",
         "FP8 param gather needs the distributed optimizer", "set parallel.distributed_optimizer=true")
    need(not s.router_padding_for_fp8 or s.fp8_blockwise, "router_padding_for_fp8", "routing-map padding is for FP8",
         "set switches.fp8_blockwise=true or switches.router_padding_for_fp8=false")
    need(not s.delay_wgrad_compute or s.ep_a2a_overlap, "delay_wgrad_compute",
         "delayed wgrad needs EP A2A overlap", "set switches.ep_a2a_overlap=true or delay_wgrad_compute=false")
    if p.overlap_param_gather and not (p.overlap_grad_reduce and p.distributed_optimizer):
        out.append(Problem("parallel.overlap_param_gather",
                           "overlapping the parameter gather needs overlap_grad_reduce and the distributed optimizer",
                           "set parallel.overlap_grad_reduce=true and parallel.distributed_optimizer=true, or "
                           "parallel.overlap_param_gather=false"))
    need(not s.bf16_optimizer_states or p.distributed_optimizer, "bf16_optimizer_states",
         "the precision-aware optimizer needs the distributed optimizer", "set parallel.distributed_optimizer=true")
    env = {**exp.recipe.env, **exp.profile.env}
    need(not (s.cuda_graphs and "expandable_segments:True" in env.get("PYTORCH_CUDA_ALLOC_CONF", "")
              and env.get("NCCL_GRAPH_REGISTER") != "0"), "cuda_graphs",
         "CUDA graphs with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True need NCCL_GRAPH_REGISTER=0 "
         "(Megatron asserts it at start-up)", "--set env.NCCL_GRAPH_REGISTER=0")
    unknown = sorted(set(s.recompute_modules) - RECOMPUTE_MODULES)
    need(not (s.fine_grained_recompute and unknown), "recompute_modules", f"unknown modules {unknown}",
         f"use some of {', '.join(sorted(RECOMPUTE_MODULES))}")
    if s.ep_a2a_overlap:
        need(p.ep > 1, "ep_a2a_overlap", "EP A2A overlap needs expert parallelism (EP > 1)",
             "set parallel.ep > 1 or switches.ep_a2a_overlap=false")
        need(s.token_dispatcher in ("alltoall", "flex"), "ep_a2a_overlap",
             "EP A2A overlap needs the alltoall or flex dispatcher", "set switches.token_dispatcher=alltoall")
        need(p.pp == 1 or p.vpp > 1 or _layout_gives_vpp(exp), "ep_a2a_overlap",
             "EP A2A overlap with PP > 1 needs virtual pipeline stages", "set parallel.vpp > 1 or a layout")
        need(not s.mtp or exp.recipe.model.mtp_num_layers <= 1, "ep_a2a_overlap",
             "EP A2A overlap supports at most one MTP layer", "set model.mtp_num_layers=1")
        need(not (s.fine_grained_recompute and "moe" in s.recompute_modules), "ep_a2a_overlap",
             "EP A2A overlap cannot recompute 'moe'", "drop 'moe' from switches.recompute_modules")
    return out


def container_paths(exp: Experiment) -> list[tuple[str, str]]:
    """(setting, absolute path) of everything a job reads or writes outside its run directory."""
    prof, t = exp.profile, exp.recipe.training
    found = [("training.data_path", p) for p in t.data_path if not _is_number(p)]
    found += [("training.tokenizer_model", t.tokenizer_model or ""), ("training.checkpoint_dir", t.checkpoint_dir or ""),
              ("profile.megatron_path", prof.megatron_path or ""), ("profile.bindpcie_path", prof.bindpcie_path or "")]
    return [(setting, path) for setting, path in found if path.startswith("/")]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _mounted(path: str, mounts: list[str]) -> bool:
    """Whether a container path lies under the destination of one of pyxis' ``SRC[:DST[:FLAGS]]`` mounts."""
    targets = [(m.split(":") + [m])[1] if ":" in m else m for m in mounts]
    return any(path == dst or path.startswith(dst.rstrip("/") + "/") for dst in targets if dst)


def rule_container(exp: Experiment) -> list[Problem]:
    """With a container image, every path the job needs must be mounted (the run directory and the toolkit are)."""
    cont = exp.profile.container
    if not cont.image:
        return []
    return [Problem(setting, f"{path} is not visible in the container: no profile.container.mounts entry covers it",
                    f"add a mount such as '{_top(path)}:{_top(path)}' to profile.container.mounts")
            for setting, path in container_paths(exp) if not _mounted(path, cont.mounts)]


def _top(path: str) -> str:
    return "/" + path.strip("/").split("/")[0]


def rule_warnings(exp: Experiment) -> list[Problem]:
    s, t, out = exp.recipe.switches, exp.recipe.training, []
    if s.force_load_balancing:
        out.append(Problem("switches.force_load_balancing", "forced balanced routing is for benchmarks only",
                           "turn it off for real training", "warning"))
    if s.cuda_graphs and s.ep_a2a_overlap:   # Megatron accepts it; the capture failed on the GPU machine
        out.append(Problem("switches.cuda_graphs", "TE CUDA graphs with EP A2A overlap failed at graph capture "
                           "(cudaErrorStreamCaptureIsolation) on megatron-core 0.19.2 + TE 2.20.2, EP=2 on H200, "
                           "2026-11-28; without the overlap they ran", "set switches.ep_a2a_overlap=false "
                           "switches.delay_wgrad_compute=false, or try a short run first", "warning"))
    if s.cuda_graphs and s.delay_wgrad_compute:   # seen on 2 x H200, 2026-11-29: Megatron's argument check asserts
        severity: Severity = "error" if "--no-gradient-accumulation-fusion" in t.extra_args else "warning"
        out.append(Problem("switches.cuda_graphs", "CUDA graphs with delayed wgrad need gradient-accumulation fusion "
                           "(APEX's fused_weight_gradient_mlp_cuda); Megatron refuses them without it, and the bundled "
                           "entry turns the fusion off where APEX is missing", "set switches.delay_wgrad_compute=false "
                           "switches.ep_a2a_overlap=false, or run in an image with APEX", severity))
    if not t.data_path:
        out.append(Problem("training.data_path", "no data given: training uses mock data",
                           "set training.data_path to train on real data", "warning"))
    return out


def _layout_gives_vpp(exp: Experiment) -> bool:
    p = exp.recipe.parallel
    text = layout_mod.in_force(p.pipeline_layout)
    if text is None:
        return False
    try:
        return layout_mod.parse(text).num_stages > p.pp
    except layout_mod.LayoutError:
        return False


RULES: tuple[Rule, ...] = (rule_resources, rule_rendered_values, rule_model_parallel, rule_experts, rule_layout, rule_batch,
                           rule_switches, rule_container, rule_checkpointing, rule_extra_args, rule_profiling,
                           rule_exit_margin, rule_warnings)


def rule_memory(exp: Experiment) -> list[Problem]:
    """The estimator's guard rail: a warning when the predicted per-GPU peak exceeds the profile GPU's memory,
    naming the largest component and the cheapest fix (``strict_memory`` makes it an error)."""
    from .. import estimate  # the estimator imports only spec-level modules; loaded when a rule needs it

    if not exp.profile.gpu:
        return []
    try:
        est = estimate.estimate_experiment(exp)
    except estimate.gpus.UnknownGpu:
        return [Problem("profile.gpu", f"unknown GPU type {exp.profile.gpu!r}", f"use one of {', '.join(estimate.gpus.GPUS)}")]
    except (ArithmeticError, ValueError) as err:  # a shape the estimator does not cover: say so, block nothing
        return [Problem("memory", f"no estimate for this configuration ({err})", "check memory with a short run",
                        "warning")]
    if est.fits:
        return []
    name, value = estimate.report.largest_component(est.memory.breakdown)
    return [Problem("memory", f"predicted peak {est.memory.device_gb:.1f} GB per GPU (allocator "
                    f"{est.memory.peak_allocated_gb:.1f} GB, pipeline rank {est.memory.worst_rank}) exceeds the "
                    f"{est.gpu.name}'s {est.gpu.memory_gb:.1f} GB; largest component {name} {value:.1f} GB",
                    estimate.report.cheapest_fix(est.setup, est.gpu), "warning")]


def strict_memory(problems: list[Problem]) -> list[Problem]:
    """``--strict-memory``: the memory warning becomes an error."""
    return [replace(p, severity="error") if p.setting == "memory" else p for p in problems]


def validate(exp: Experiment) -> list[Problem]:
    """All problems of an experiment, errors and warnings, in rule order; the memory estimate last, when the
    configuration is otherwise valid."""
    problems = [problem for rule in RULES for problem in rule(exp)]
    return problems if blocking(problems, for_submit=False) else problems + rule_memory(exp)


def blocking(problems: list[Problem], for_submit: bool = True) -> list[Problem]:
    """The problems that stop a submission (errors and missing settings) or a rendering (errors only)."""
    stops = ("error", "missing") if for_submit else ("error",)
    return [p for p in problems if p.severity in stops]
