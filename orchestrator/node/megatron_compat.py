"""Known packaging pitfalls of the megatron-core wheel, handled before training starts.

Node side: standard library only. The functions that decide are pure (argv, paths and flags in;
the fixed argv and one-line messages out); ``prepare`` is the one place that looks at the
installation and writes a file.

1. ``megatron.training`` runs ``make -C megatron/core/datasets`` on rank 0 at start, although the
   wheel ships the dataset helper prebuilt and no Makefile: Megatron then exits with
   "No targets specified and no makefile found". Fix: a no-op Makefile next to the installed
   package; where that folder is read-only (or ``make`` is missing) the training entry skips
   Megatron's compile step instead, since the prebuilt helper is there.
2. ``--gradient-accumulation-fusion`` (Megatron's default) needs APEX's
   ``fused_weight_gradient_mlp_cuda``; without it the first forward step fails. Fix: add
   ``--no-gradient-accumulation-fusion`` with a WARNING line.

Also here: the one-line error for a node without megatron.training, the options the bundled
entry does not implement, and helpers for the API drift between megatron-core versions.
"""

from __future__ import annotations

import enum
import importlib.metadata
import importlib.util
import inspect
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from orchestrator.node.capabilities import module_found

PREFIX = "orchestrator.train"
NO_GRAD_ACCUM_FUSION = "--no-gradient-accumulation-fusion"
APEX_FUSED_WGRAD_MODULE = "fused_weight_gradient_mlp_cuda"
HELPER_GLOB = "helpers_cpp*.so"
INSTALL_HINT = (
    "pip install 'megatron-core>=0.17' (Python >= 3.12; it ships megatron.training) with torch and "
    "transformer-engine[pytorch]; on the GPU machines run scripts/gpu/setup-remote.sh, then "
    "source scripts/gpu/env.sh"
)
# Megatron options this lean entry does not implement (Megatron-LM's pretrain_gpt.py does).
UNSUPPORTED = (
    "use_legacy_models", "yaml_cfg", "heterogeneous_layers_config_path", "experimental_attention_variant",
    "sft", "fim_data", "hybrid_context_parallel", "dataloader_inter_document_masking",
)
NOOP_MAKEFILE = (
    "# Written by orchestrator.node.megatron_compat: the megatron-core wheel ships helpers_cpp prebuilt\n"
    "# but no Makefile, and megatron.training runs `make -C` on this folder at start.\n"
    ".PHONY: all\n"
    "all:\n"
    "\t@:\n"
)


class MakefileAction(enum.Enum):
    """What to do about ``megatron/core/datasets/Makefile``."""

    PRESENT = "present"  # a Makefile is there: Megatron's make step works as shipped
    WRITE = "write"  # write the no-op Makefile
    SKIP_MAKE = "skip-make"  # cannot write it (or no make): skip Megatron's compile step
    BROKEN = "broken"  # no Makefile and no prebuilt helper: nothing to fall back on
    NOT_FOUND = "not-found"  # megatron.core is not installed


@dataclass(frozen=True)
class MakefilePlan:
    """The decision for the datasets folder, with the line to print (if any)."""

    action: MakefileAction
    datasets_dir: Path | None
    message: str | None = None

    @property
    def makefile(self) -> Path | None:
        return None if self.datasets_dir is None else self.datasets_dir / "Makefile"


@dataclass(frozen=True)
class ArgvFix:
    """An argv after a fix, and the lines that say what changed."""

    argv: list[str]
    messages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CompatReport:
    """Everything ``prepare`` decided: the argv to train with, lines to print, make handling."""

    argv: list[str]
    messages: list[str]
    makefile: MakefilePlan

    @property
    def skip_compile_helpers(self) -> bool:
        return self.makefile.action is MakefileAction.SKIP_MAKE


def has_flag(argv: Sequence[str], flag: str) -> bool:
    """True if ``flag`` appears as an option (also as ``flag=value``)."""
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


def fix_gradient_accumulation_fusion(argv: Sequence[str], *, fused_wgrad_available: bool) -> ArgvFix:
    """Add ``--no-gradient-accumulation-fusion`` when APEX's fused wgrad kernel is missing."""
    args = list(argv)
    if fused_wgrad_available or has_flag(args, NO_GRAD_ACCUM_FUSION):
        return ArgvFix(args)
    message = (
        f"{PREFIX}: WARNING: APEX module {APEX_FUSED_WGRAD_MODULE} is not importable, so gradient "
        f"accumulation fusion cannot run; added {NO_GRAD_ACCUM_FUSION} "
        "(install APEX with --cpp_ext --cuda_ext to keep the fusion)"
    )
    return ArgvFix(args + [NO_GRAD_ACCUM_FUSION], [message])


def plan_datasets_makefile(
    datasets_dir: Path | None,
    *,
    makefile_exists: bool,
    prebuilt_helper: bool,
    writable: bool,
    make_on_path: bool,
) -> MakefilePlan:
    """Decide how to get past Megatron's ``make -C megatron/core/datasets`` (pure)."""
    if datasets_dir is None:
        return MakefilePlan(MakefileAction.NOT_FOUND, None)
    fix = f"printf 'all:\\n\\t@:\\n' > {datasets_dir / 'Makefile'}"
    if makefile_exists and make_on_path:
        return MakefilePlan(MakefileAction.PRESENT, datasets_dir)
    if not prebuilt_helper:
        if makefile_exists:
            return MakefilePlan(MakefileAction.PRESENT, datasets_dir)
        return MakefilePlan(
            MakefileAction.BROKEN,
            datasets_dir,
            f"{PREFIX}: WARNING: {datasets_dir} has neither a Makefile nor a prebuilt {HELPER_GLOB}; "
            "Megatron's dataset helper step will fail (fix: reinstall megatron-core from its wheel)",
        )
    if not make_on_path:
        return MakefilePlan(
            MakefileAction.SKIP_MAKE,
            datasets_dir,
            f"{PREFIX}: WARNING: `make` is not on PATH; skipping Megatron's dataset helper compile "
            f"step (the prebuilt helper in {datasets_dir} is used)",
        )
    if writable:
        return MakefilePlan(
            MakefileAction.WRITE,
            datasets_dir,
            f"{PREFIX}: wrote a no-op Makefile to {datasets_dir} (the megatron-core wheel ships the "
            "dataset helper prebuilt but no Makefile, and megatron.training runs make there)",
        )
    return MakefilePlan(
        MakefileAction.SKIP_MAKE,
        datasets_dir,
        f"{PREFIX}: WARNING: {datasets_dir} is read-only and has no Makefile; skipping Megatron's "
        f"dataset helper compile step (fix for good, as the install's owner: {fix})",
    )


def write_noop_makefile(datasets_dir: Path) -> None:
    """Write the no-op Makefile atomically (several ranks may race here)."""
    fd, tmp = tempfile.mkstemp(prefix=".Makefile.", dir=datasets_dir)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(NOOP_MAKEFILE)
        os.chmod(tmp, 0o644)
        os.replace(tmp, datasets_dir / "Makefile")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def megatron_datasets_dir() -> Path | None:
    """``megatron/core/datasets`` of the installed megatron-core, found without importing it."""
    try:
        spec = importlib.util.find_spec("megatron.core")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / "datasets"
    return candidate if candidate.is_dir() else None


def ensure_datasets_makefile(datasets_dir: Path | None) -> MakefilePlan:
    """Look at the folder, decide, and write the Makefile where that is the plan."""
    plan = plan_datasets_makefile(
        datasets_dir,
        makefile_exists=datasets_dir is not None and (datasets_dir / "Makefile").exists(),
        prebuilt_helper=datasets_dir is not None and any(datasets_dir.glob(HELPER_GLOB)),
        writable=datasets_dir is not None and os.access(datasets_dir, os.W_OK),
        make_on_path=shutil.which("make") is not None,
    )
    if plan.action is not MakefileAction.WRITE or datasets_dir is None:
        return plan
    try:
        write_noop_makefile(datasets_dir)
    except OSError:
        # os.access said yes but the write failed (read-only mount, quota): fall back.
        return plan_datasets_makefile(
            datasets_dir, makefile_exists=False, prebuilt_helper=True, writable=False, make_on_path=True
        )
    return plan


def prepare(argv: Sequence[str], datasets_dir: Path | None = None) -> CompatReport:
    """Apply every fix: the argv to hand Megatron, lines to print, and the make decision."""
    grad = fix_gradient_accumulation_fusion(
        argv, fused_wgrad_available=module_found(APEX_FUSED_WGRAD_MODULE)
    )
    plan = ensure_datasets_makefile(datasets_dir if datasets_dir is not None else megatron_datasets_dir())
    messages = list(grad.messages) + ([plan.message] if plan.message else [])
    return CompatReport(grad.argv, messages, plan)


# --------------------------------------------------------------------------- API drift helpers

# GPTDatasetConfig field -> the Megatron argument it is read from; fields a version lacks are skipped.
DATASET_FIELDS: dict[str, str] = {
    "random_seed": "seed",
    "sequence_length": "seq_length",
    "path_to_cache": "data_cache_path",
    "create_attention_mask": "create_attention_mask_in_dataloader",
    "fast_cache_load": "dataloader_fast_cache_load",
    "defer_npy_index_mmap": "dataloader_defer_npy_index_mmap",
    **{name: name for name in (
        "split", "multiple_validation_sets", "full_validation", "num_dataset_builder_threads",
        "mmap_bin_files", "reset_position_ids", "reset_attention_mask", "eod_mask_loss",
        "object_storage_cache_path", "mid_level_dataset_surplus", "allow_ambiguous_pad_tokens",
        "data_parallel_size", "context_parallel_size",
    )},
}


def supported_kwargs(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``kwargs`` that ``fn`` accepts (Megatron's signatures drift by version)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {key: value for key, value in kwargs.items() if key in params}


def dataset_config_kwargs(args: Any, config_fields: Iterable[str]) -> dict[str, Any]:
    """GPTDatasetConfig keyword arguments read from Megatron's parsed ``args``."""
    wanted = set(config_fields)
    return {
        name: getattr(args, source)
        for name, source in DATASET_FIELDS.items()
        if name in wanted and hasattr(args, source)
    }


def megatron_training_problem() -> str | None:
    """Why ``megatron.training`` cannot be imported here, found without importing it (None: it can)."""
    if module_found("megatron.training"):
        return None
    try:
        version = importlib.metadata.version("megatron-core")
    except importlib.metadata.PackageNotFoundError:
        return "No module named 'megatron'"
    return f"megatron-core {version} is installed but has no megatron.training"


def missing_megatron_message(exc: BaseException | str) -> str:
    """The one-line error for a node without megatron-core >= 0.17."""
    reason = (str(exc).splitlines() or [type(exc).__name__])[0]
    return (
        f"{PREFIX}: error: megatron-core >= 0.17 (megatron.training) is not importable: {reason} "
        f"(fix: {INSTALL_HINT})"
    )


def unsupported_options(args: Any) -> list[str]:
    """One line per Megatron option set in ``args`` that this entry does not implement."""
    return [
        f"{PREFIX}: error: --{name.replace('_', '-')} is not supported by the bundled entry "
        "(use Megatron-LM's pretrain_gpt.py)"
        for name in UNSUPPORTED
        if getattr(args, name, None)
    ]
