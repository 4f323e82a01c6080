"""Checks of a sweep's variants against what its jobs hold for all of them: a Slurm array's one sbatch script, a
local sweep's one controller. A variant that changes one of those is refused (it would silently run with the first
variant's value); which settings those are is derived from the rendered script itself, not listed by hand."""

from __future__ import annotations

from dataclasses import fields, replace

from . import render
from ..spec import slurm_time
from ..spec.config import Experiment
from ..spec.schema import ConfigError
from ..spec.sweep import Variant


def _array_script(exp: Experiment, env: Experiment) -> str:
    """The array script ``exp``'s variant would get (rendered as ``_array_chunk`` renders it), exporting ``env``'s
    environment: the environment is applied per rank from each task's job.json, so it is not the script's to hold."""
    return render.render(exp, "RUN/tasks/0_%a", job_name="SWEEP", array="0-1%1", run_root="RUN",
                         script_env=render.job_env(env)).files["sbatch.sh"]


def _changed_fields(first: Experiment, other: Experiment) -> list[tuple[str, Experiment]]:
    """Each setting ``other`` sets differently from ``first`` (``profile.qos``, ``parallel.ep``), with ``first``
    changed in that setting alone."""
    found: list[tuple[str, Experiment]] = []
    for f in fields(first.profile):
        if (value := getattr(other.profile, f.name)) != getattr(first.profile, f.name):
            found.append((f"profile.{f.name}", Experiment(replace(first.profile, **{f.name: value}), first.recipe)))
    for group in ("model", "parallel", "training", "switches"):
        mine, theirs = getattr(first.recipe, group), getattr(other.recipe, group)
        for f in fields(mine):
            if (value := getattr(theirs, f.name)) != getattr(mine, f.name):
                recipe = replace(first.recipe, **{group: replace(mine, **{f.name: value})})
                found.append((f"{group}.{f.name}", Experiment(first.profile, recipe)))
    return found


def allocation(exp: Experiment) -> dict[str, int]:
    """What a back-end's job takes from the experiment it allocates for (``launch`` builds its JobRequest with
    these): the local sweep's one controller holds them for every variant."""
    return {"gpus_per_node": exp.profile.gpus_per_node,
            "time_limit_s": slurm_time.limit_seconds(exp.profile.time_limit)}


def one_controller(variants: list[tuple[Variant, Experiment]]) -> None:
    """Refuse a local-sweep variant whose allocation (``allocation``) differs from the first's."""
    held = allocation(variants[0][1])
    for variant, exp in variants[1:]:
        if changed := [k for k, v in allocation(exp).items() if held[k] != v]:
            raise ConfigError(f"sweep.variants.{variant.name}", f"changes {', '.join(changed)} of the local sweep's "
                              "one controller: every variant would run with the first's", "move the variant to a "
                              "sweep of its own, or set it for the whole sweep")


def one_array_script(variants: list[tuple[Variant, Experiment]]) -> None:
    """Refuse a variant that changes what the array's one sbatch script holds (nodes, QOS, image, time limit, a
    segment size that follows EP...): every task would run with the first variant's value. Which settings those
    are is derived from the script itself: the variant's script is rendered and compared with the first's."""
    first = variants[0][1]
    held = _array_script(first, first)
    for variant, exp in variants[1:]:
        if exp == first or _array_script(exp, first) == held:
            continue
        named = [name for name, alone in _changed_fields(first, exp) if _array_script(alone, first) != held]
        raise ConfigError(f"sweep.variants.{variant.name}", f"changes {', '.join(named) or 'the array script'}, "
                          "which the job array's one sbatch script holds: every task would run with the first "
                          "variant's value", "move the variant to a sweep of its own, or set it for the whole sweep")
