"""``orchestrator plan``: every parallel configuration the rules accept for a cluster, those that fit the GPU's
memory ranked by predicted throughput, each with the ``--set`` overrides that reproduce it."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click

from .. import estimate as est
from ..spec.config import Experiment, apply_overrides
from ..estimate.memory import estimate_memory
from ..estimate.planner import Candidate, PlanResult, plan as run_plan
from ..estimate.report import grouped
from ..submit.fit import shown
from ..submit import launch
from .common import (
    experiment_options, gpu_or_fail, handle_config_errors, load, print_submission, submission_errors)
from .output import fail


def _same(c: Candidate, s: est.Setup) -> bool:
    keys = ("tp", "pp", "vpp", "cp", "ep", "etp", "mbs", "recompute", "stages", "a2a_overlap")
    return all(getattr(c.setup, k) == getattr(s, k) for k in keys)


def plot(cands: list[Candidate], path: Path) -> None:
    """Stacked bars of the memory breakdown of each shown configuration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [grouped(estimate_memory(c.setup).breakdown) for c in cands]
    names = sorted({k for g in groups for k in g}, key=lambda k: -sum(g.get(k, 0.0) for g in groups))
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(cands), 5))
    bottom = [0.0] * len(cands)
    for name in names:
        values = [g.get(name, 0.0) for g in groups]
        ax.bar(range(len(cands)), values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(range(len(cands)), [f"#{i + 1}\nTP{c.setup.tp} PP{c.setup.pp} VP{c.setup.vpp}\nEP{c.setup.ep} "
                                      f"CP{c.setup.cp} MBS{c.setup.mbs}\n{c.tflops_per_gpu:.0f} TF/s"
                                      for i, c in enumerate(cands)], fontsize=7)
    ax.set_ylabel("GB per GPU")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def row(rank: int, c: Candidate, pinned: list[str]) -> dict[str, object]:
    return {"rank": rank, "tflops_per_gpu": round(c.tflops_per_gpu, 1),
            "tokens_per_s_per_gpu": round(c.tokens_per_s_per_gpu, 1), "peak_memory_gb": round(c.peak_memory_gb, 2),
            "device_memory_gb": round(c.device_memory_gb, 2), "overrides": pinned + c.overrides()}


@click.command("plan")
@experiment_options
@click.option("--nodes", type=click.IntRange(min=1), default=None, help="nodes to plan for (default: the recipe's)")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="configurations to show")
@click.option("--margin", type=click.FloatRange(0.0, 0.9), default=0.05, show_default=True,
              help="fraction of the GPU's memory kept free")
@click.option("--json", "as_json", is_flag=True, help="the result as one JSON object")
@click.option("--submit", "submit_top", is_flag=True, help="submit the top configuration, with your other --set")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="draw the memory breakdown of the shown configurations as stacked bars (PNG)")
@handle_config_errors
def plan(profile: str, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
         recipes_dir: str | None, nodes: int | None, top: int, margin: float, as_json: bool, submit_top: bool,
         plot_path: Path | None) -> None:
    """Rank the parallel configurations of PROFILE + RECIPE that fit the GPU's memory, fastest first."""
    if not math.isfinite(margin):
        fail(f"--margin: {margin} is not a number (fix: a fraction from 0 to 0.9, e.g. 0.05)")
    exp = load(profile, recipe, overrides, profiles_dir, recipes_dir)
    nodes = nodes or exp.recipe.nodes  # the node count the recipe is built for, unless --nodes says otherwise
    pinned = [f"profile.nodes={nodes}", f"nodes={nodes}"] if nodes and nodes != exp.profile.nodes else []
    if pinned:
        exp = load(profile, recipe, overrides + tuple(pinned), profiles_dir, recipes_dir)
    gpu = gpu_or_fail(exp)
    base = est.from_experiment(exp)
    start = time.perf_counter()
    result = run_plan(base, gpu, margin)
    seconds = time.perf_counter() - start
    best = shown(exp, result.ranked, top)
    own = next((i for i, c in enumerate(result.ranked, 1) if _same(c, base)), None)
    rows = [row(i, c, pinned) for i, c in enumerate(best, 1)]
    summary = {"gpu": gpu.name, "world": base.world, "evaluated": result.evaluated, "over_memory": result.over_memory,
               "fitting": len(result.ranked), "seconds": round(seconds, 3), "recipe_rank": own, "top": rows}
    if plot_path:
        plot(best, plot_path)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print(result, best, pinned, own, base.world, gpu.name, gpu.memory_gb, margin, seconds)
    if submit_top:
        _submit_top(exp, best, [*overrides, *pinned])


def _submit_top(exp: Experiment, best: list[Candidate], overrides: list[str]) -> None:
    """``--submit``: the top configuration, the user's settings after it (they win where both set one)."""
    if not best:
        fail("--submit: no configuration fits (fix: more nodes, a smaller --margin, or another recipe)")
    chosen = [*best[0].overrides(), *overrides]
    click.echo("submitting #1: --set " + " --set ".join(best[0].overrides()))
    with submission_errors():
        sub = launch.submit_run(apply_overrides(exp, chosen), chosen)
    print_submission(sub)


def _print(result: PlanResult, best: list[Candidate], pinned: list[str], own: int | None, world: int, gpu: str,
           memory_gb: float, margin: float, seconds: float) -> None:
    click.echo(f"{result.evaluated} configurations for {world} x {gpu} evaluated in {seconds:.2f} s; "
               f"{result.over_memory} over {(1 - margin) * memory_gb:.1f} GB, {len(result.ranked)} fit")
    for rank, c in enumerate(best, 1):
        click.echo(f"#{rank}  {c.tflops_per_gpu:7.1f} TFLOP/s/GPU  {c.tokens_per_s_per_gpu:7.0f} tokens/s/GPU  "
                   f"{c.peak_memory_gb:6.1f} GB  --set " + " --set ".join(pinned + c.overrides()))
    click.echo(f"the recipe's own configuration: {'rank #' + str(own) if own else 'not among those that fit'}"
               + (f" ({result.ranked[own - 1].tflops_per_gpu:.1f} TFLOP/s/GPU)" if own else ""))
