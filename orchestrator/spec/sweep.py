"""Sweep files: named variants of one recipe, launched as one Slurm job array (one task per variant).

    name: proxy-ablation
    recipe: dsv3-proxy-3l          # optional; --recipe wins when given
    set: [training.train_iters=20] # optional overrides for every variant
    variants:
      - name: bf16-alltoall
        set: [switches.fp8_blockwise=false, switches.token_dispatcher=alltoall]
      - name: fp8
        set: [switches.fp8_blockwise=true]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Experiment, apply_overrides
from .yamltext import load_yaml
from .schema import ConfigError, doc, from_dict


@dataclass
class Variant:
    """One array task."""

    name: str = doc("", "variant name (its array task's name)", name=True)
    set: list[str] = doc([], "overrides of this variant, each key=value as for --set")
    description: str = doc("", "what this variant changes")


@dataclass
class Sweep:
    """A list of variants sharing a profile and recipe."""

    name: str = doc("", "sweep name (the run directory's and the Slurm job's name)", name=True)
    recipe: str | None = doc(None, "recipe of every variant (--recipe wins)")
    set: list[str] = doc([], "overrides applied to every variant before its own")
    max_parallel: int | None = doc(None, "array tasks running at once (default: the profile's)", lo=1, hi=100000)
    variants: list[Variant] = doc([], "the variants, one array task each, in order")


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file."""
    data = load_yaml(Path(path))
    data.setdefault("name", Path(path).stem)
    sweep = from_dict(Sweep, data, "sweep")
    if not sweep.variants:
        raise ConfigError("sweep.variants", "is empty", "list at least one variant")
    seen: set[str] = set()
    for i, variant in enumerate(sweep.variants):
        if not variant.name or variant.name.lower() in seen:
            raise ConfigError(f"sweep.variants[{i}].name", f"{variant.name!r} is empty or repeated (names "
                              "differing only in case count as one)", "give each variant a unique name of letters, "
                              "digits, . _ -")
        if variant.name.isdigit():
            raise ConfigError(f"sweep.variants[{i}].name", f"{variant.name!r} is a number: `--task {variant.name}` "
                              "would mean task index " + variant.name, "give it a name with a letter (e.g. "
                              f"v{variant.name})")
        seen.add(variant.name.lower())
    return sweep


def expand(base: Experiment, sweep: Sweep) -> list[tuple[Variant, Experiment]]:
    """Each variant's experiment: base + the sweep's overrides + the variant's."""
    return [_variant(base, sweep, v) for v in sweep.variants]


def _variant(base: Experiment, sweep: Sweep, variant: Variant) -> tuple[Variant, Experiment]:
    """One variant's experiment; an error names the variant."""
    try:
        return variant, apply_overrides(base, sweep.set + variant.set)
    except ConfigError as err:
        raise ConfigError(f"sweep.variants.{variant.name}: {err.setting}", err.problem, err.fix) from None


def own_checkpoints(variants: list[tuple[Variant, Experiment]]) -> None:
    """Refuse two variants naming the same ``training.checkpoint_dir``: array tasks run at once and would overwrite
    each other's checkpoints (left empty, each task saves in its own directory)."""
    owner: dict[str, str] = {}
    for variant, exp in variants:
        named = exp.recipe.training.checkpoint_dir
        if not named:
            continue
        key = str(Path(named).expanduser().resolve())
        if key in owner:
            raise ConfigError(f"sweep.variants.{variant.name}.training.checkpoint_dir",
                              f"{named} is also variant {owner[key]}'s: array tasks run at once and would overwrite "
                              "each other's checkpoints", "give each variant its own training.checkpoint_dir, or "
                              "leave it empty (each task then saves in its own directory)")
        owner[key] = variant.name
