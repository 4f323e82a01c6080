"""``orchestrator runsh``: what ``bash run.sh`` calls, with run.sh's variables in the environment.

Local profile: the preflight payload (rendezvous + all-reduce over the local ranks, versions, Megatron's own
argument check), then -- where GPUs and megatron-core >= 0.17 are present -- a few iterations of the proxy, then
the status table and how to point run.sh at a cluster. Slurm profiles: submit, then the status table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import click

from ..submit.checks import all_problems
from ..spec.config import Experiment, load_experiment
from ..submit.run_script import check_required, overrides_from_env, training_blocker
from .common import handle_config_errors, print_files
from .preflight import preflight
from .render import dry_run_dir, render_with_warnings
from .status import status_cmd
from .submit import submit
from .validate import report_problems

LOCAL_TRAIN_ITERS = "training.train_iters=10"
NEXT_STEPS = """
To run on a cluster: fill the environment block at the top of run.sh (PROFILE, ACCOUNT, PARTITION,
CONTAINER_IMAGE, ...) or write one for your cluster with
    orchestrator render --profile h100-eos --run-sh my-run.sh
then `DRY_RUN=1 bash my-run.sh` to read every file it would submit, and `bash my-run.sh` to submit.
`orchestrator profiles` lists the clusters known here; `orchestrator status` shows the runs."""


@click.command("runsh", hidden=True)
@click.pass_context
@handle_config_errors
def runsh(ctx: click.Context) -> None:
    """Validate, render and (unless DRY_RUN=1) submit what run.sh's variables describe."""
    env = dict(os.environ)
    profile_name = env.get("PROFILE") or "local"
    recipe = env.get("RECIPE") or None  # None: the profile's default_recipe
    overrides = overrides_from_env(env)
    exp = load_experiment(profile_name, recipe, overrides)
    check_required(exp.profile)
    report_problems(all_problems(exp, with_megatron=False))
    if env.get("DRY_RUN", "") not in ("", "0"):
        _dry_run(exp)
        return
    common = dict(profile=profile_name, recipe=recipe, profiles_dir=None, recipes_dir=None)
    if exp.profile.scheduler == "local":
        _local(ctx, exp, common, overrides)
    else:
        ctx.invoke(submit, overrides=tuple(overrides), sweep_file=None, segments=1, segment_dependency="afterok",
                   from_run=None, follow=False, dry_run=False, **common)
        ctx.invoke(status_cmd, run=(), root=Path(exp.profile.output_root), show_all=False, follow=False,
                   interval=2.0, as_json=False)


def _local(ctx: click.Context, exp: Experiment, common: Mapping[str, object], overrides: list[str]) -> None:
    click.echo(f"== preflight: {exp.world_size} local ranks")
    ctx.invoke(preflight, overrides=tuple(overrides), no_wait=False, **common)
    blocker = training_blocker(exp.profile.gpus_per_node)
    if blocker:
        click.echo(f"== training run skipped: {blocker}")
    else:
        click.echo(f"== training: {exp.recipe.name}, a few iterations")
        ctx.invoke(submit, overrides=(LOCAL_TRAIN_ITERS, *overrides), sweep_file=None, segments=1,
                   segment_dependency="afterok", from_run=None, follow=True, dry_run=False, **common)
    click.echo("== runs")
    ctx.invoke(status_cmd, run=(), root=Path(exp.profile.output_root), show_all=True, follow=False,
               interval=2.0, as_json=False)
    click.echo(NEXT_STEPS)


def _dry_run(exp: Experiment) -> None:
    print_files(render_with_warnings(exp, dry_run_dir(exp)).files.items())
    click.echo("DRY_RUN=1: nothing was submitted")
