"""Rules about the Megatron arguments as rendered: checkpointing needs a save interval, ``extra_args`` never repeats
a flag the toolkit renders, profiling steps lie inside the run."""

from __future__ import annotations

from dataclasses import replace

from ..spec import config, megatron_args
from ..spec.config import Experiment
from .problem import Problem


def rule_checkpointing(exp: Experiment) -> list[Problem]:
    """Megatron refuses ``--save`` without ``--save-interval`` at start-up, after the allocation: refuse it here
    (the toolkit renders both together; ``training.extra_args`` could still add a lone ``--save``)."""
    try:
        argv = megatron_args.build(exp, "/run").argv
    except ValueError:   # a time limit that does not parse: rule_resources names it
        return []
    if "--save" in argv and "--save-interval" not in argv:
        return [Problem("training.save_interval", "a checkpoint directory (--save) without --save-interval: "
                        "Megatron refuses it at start-up", "set training.save_interval=N")]
    return []


def rule_extra_args(exp: Experiment) -> list[Problem]:
    """``training.extra_args`` may add what the toolkit does not render, never repeat a flag it renders from a
    setting it validated (Megatron's parser keeps the last: ``--tensor-model-parallel-size 4`` would silently
    undo the checked ``parallel.tp``). The owned flags are those the build renders without the extra arguments."""
    extra = exp.recipe.training.extra_args
    if not extra:
        return []
    bare = Experiment(exp.profile, replace(exp.recipe, training=replace(exp.recipe.training, extra_args=[])))
    try:
        owned = {a for a in megatron_args.build(bare, "/run").argv if a.startswith("--")}
    except ValueError:   # a time limit that does not parse: rule_resources names it
        return []
    if taken := [a for a in extra if a.split("=", 1)[0] in owned]:
        return [Problem("training.extra_args", f"{taken[0].split('=', 1)[0]} is rendered by the toolkit from a "
                        "validated setting; a second one in extra_args would silently replace it",
                        "change the setting that renders it (`orchestrator render --dry-run` shows the arguments, "
                        "`orchestrator recipes --explain RECIPE` the settings), and drop it from extra_args")]
    return []


def rule_profiling(exp: Experiment) -> list[Problem]:
    """``profiling.steps`` is A-B inside the run's iterations; profiled ranks exist."""
    p, iters, out = exp.recipe.profiling, exp.recipe.training.train_iters, []
    if p.steps:
        try:
            first, last = config.profile_steps(p.steps)
            if last > iters:
                out.append(Problem("profiling.steps", f"ends at iteration {last}, after the run's {iters}",
                                   f"trace inside 1-{iters}, or raise training.train_iters"))
        except ValueError as err:
            out.append(Problem("profiling.steps", str(err), "write A-B, e.g. --profile-steps 5-7"))
    if bad := [r for r in p.ranks if not 0 <= r < exp.world_size]:
        out.append(Problem("profiling.ranks", f"{bad} are not ranks of a world of {exp.world_size}",
                           f"name ranks 0-{exp.world_size - 1}"))
    return out
