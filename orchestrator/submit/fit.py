"""The configuration that fits this machine: on the local profile with GPUs, the planner's fastest configuration
of the profile's default recipe that fits the GPUs found (their count and memory) and passes every rule.

Applied by ``bash run.sh`` and ``submit --profile local`` where the user named no recipe and set none of the
settings the planner chooses; the line that says which configuration and why is printed before anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .. import estimate
from ..estimate.planner import Candidate, plan
from ..spec import machine
from ..spec.config import Experiment, apply_overrides
from .rules import blocking, validate


@dataclass(frozen=True)
class Pick:
    """What the machine chose: the ``--set`` items (empty: the recipe as it is) and the line that says why."""

    overrides: tuple[str, ...]
    line: str


def shown(exp: Experiment, ranked: list[Candidate], top: int) -> list[Candidate]:
    """The first ``top`` candidates that pass every rule once applied to the recipe."""
    out = []
    for cand in ranked:
        if not blocking(validate(apply_overrides(exp, cand.overrides())), for_submit=False):
            out.append(cand)
        if len(out) == top:
            break
    return out


def chosen_settings(cand: Candidate) -> set[str]:
    """The settings a candidate sets (``parallel.ep``, ``training.micro_batch_size``, ...)."""
    return {item.partition("=")[0] for item in cand.overrides()}


def describe(cand: Candidate) -> str:
    """``TP1 PP1 EP1 MBS 4, no recompute, no A2A overlap``."""
    s = cand.setup
    parts = [f"TP{s.tp} PP{s.pp}" + (f" VPP{s.vpp}" if s.vpp > 1 else "") + f" EP{s.ep}"
             + (f" CP{s.cp}" if s.cp > 1 else "") + f" MBS {s.mbs}"]
    parts.append(f"recompute {'+'.join(sorted(s.recompute))}" if s.recompute else "no recompute")
    parts.append("EP A2A overlap" if s.a2a_overlap else "no A2A overlap")
    return ", ".join(parts)


def for_machine(exp: Experiment, recipe_named: bool, user: Sequence[str]) -> Pick | None:
    """The pick for ``exp`` on this machine; None where nothing is chosen (a Slurm profile, no GPU here)."""
    here = machine.here()
    if exp.profile.scheduler != "local" or not here.count:
        return None
    found = here.describe()
    if recipe_named:
        return Pick((), f"{found}: recipe {exp.recipe.name} as named (`orchestrator plan --profile local` ranks its "
                        "configurations for this machine)")
    try:
        gpu = estimate.gpu_of(exp)
    except (estimate.NoGpu, estimate.gpus.UnknownGpu):
        return Pick((), f"{found}: a GPU the estimator does not know, so {exp.recipe.name} runs as shipped (set "
                        "profile.gpu to the nearest of " + ", ".join(estimate.gpus.GPUS) + " to have it planned)")
    best = shown(exp, plan(estimate.from_experiment(exp), gpu).ranked, 1)
    if not best:
        return Pick((), f"{found}: no configuration of {exp.recipe.name} fits, so it runs as shipped")
    if taken := sorted({item.partition("=")[0].strip() for item in user} & chosen_settings(best[0])):
        return Pick((), f"{found}: your {', '.join(taken)} kept, so the planner's pick is not applied "
                        "(`orchestrator plan --profile local` shows it)")
    c = best[0]
    return Pick(tuple(c.overrides()), f"{found}: {describe(c)} -- predicted {c.device_memory_gb:.0f} GB, "
                                      f"{c.tflops_per_gpu:.0f} TFLOP/s/GPU (the planner's fastest of "
                                      f"{exp.recipe.name} that fits; `orchestrator plan --profile local` ranks the "
                                      "rest)")
