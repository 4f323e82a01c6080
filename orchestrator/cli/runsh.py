"""``orchestrator runsh``: what ``bash run.sh`` calls, with run.sh's variables in the environment.

Local profile: the preflight payload (rendezvous + all-reduce over the local ranks, versions, Megatron's own
argument check), then -- where GPUs and megatron-core >= 0.17 are present -- a few iterations of the proxy, then
the status table and how to point run.sh at a cluster. Slurm profiles: submit, then the status table.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..observe import status
from ..spec.config import Experiment, load_experiment
from ..submit import launch, run_records
from ..submit.backends.slurm import SlurmError
from ..submit import fit
from ..submit.checks import all_problems, outcome
from ..submit.plan import dry_run_dir
from ..submit.run_script import check_required, overrides_from_env, training_blocker
from .common import (
    check_preflight, follow_and_exit, handle_config_errors, print_files, print_submission,
    render_with_warnings, report_problems, submission_errors)
from .output import EXIT_FAILED, fail

LOCAL_TRAIN_ITERS = "training.train_iters=10"
NEXT_STEPS = """
To run on a cluster: fill the environment block at the top of run.sh (PROFILE, ACCOUNT, PARTITION,
CONTAINER_IMAGE, ...) or write one for your cluster with
    orchestrator render --profile h100-eos --run-sh my-run.sh
then `DRY_RUN=1 bash my-run.sh` to read every file it would submit, and `bash my-run.sh` to submit.
`orchestrator profiles` lists the clusters known here; `orchestrator status` shows the runs."""


@click.command("runsh", hidden=True)
@handle_config_errors
def runsh() -> None:
    """Validate, render and (unless DRY_RUN=1) submit what run.sh's variables describe."""
    env = dict(os.environ)
    recipe = env.get("RECIPE") or None  # None: the profile's default_recipe
    overrides = overrides_from_env(env)
    profile = env.get("PROFILE") or "local"
    exp = load_experiment(profile, recipe, overrides)
    if (pick := fit.for_machine(exp, recipe is not None, overrides)) is not None:
        click.echo(f"== this machine: {pick.line}")
        overrides = [*pick.overrides, *overrides]
        exp = load_experiment(profile, recipe, overrides)
    check_required(exp.profile)
    problems = all_problems(exp)
    report_problems(problems)
    click.echo(f"== Megatron's own argument check: {outcome(True, tuple(problems))}")
    if env.get("DRY_RUN", "") not in ("", "0"):
        print_files(render_with_warnings(exp, dry_run_dir(exp.profile.output_root, exp.recipe.name)).files.items())
        click.echo("DRY_RUN=1: nothing was submitted")
    elif exp.profile.scheduler == "local":
        _local(exp, overrides, load_experiment(profile, recipe, [LOCAL_TRAIN_ITERS, *overrides]))
    else:
        with submission_errors():
            print_submission(launch.submit_run(exp, overrides))
        _show_status(exp, show_all=False)


def _local(exp: Experiment, overrides: list[str], short: Experiment) -> None:
    """Preflight ``exp``, then train ``short`` (the same with a few iterations) where this machine can."""
    click.echo(f"== preflight: {exp.world_size} local ranks")
    with submission_errors():
        sub = launch.submit_run(exp, overrides, preflight=True)
    print_submission(sub)
    check_preflight(sub, exp.world_size)
    blocker = training_blocker(exp.profile.gpus_per_node)
    if blocker:
        click.echo(f"== training run skipped: {blocker}")
        click.echo("   (on a machine with GPUs and megatron-core >= 0.17, run.sh picks the configuration of the proxy "
                   "that fits them and trains it for a few iterations)")
    else:
        click.echo(f"== training: {exp.recipe.name}, a few iterations")
        with submission_errors():
            sub = launch.submit_run(short, [LOCAL_TRAIN_ITERS, *overrides])
        print_submission(sub)
        follow_and_exit(sub.run_dir)
    click.echo("== runs")
    _show_status(exp, show_all=True)
    click.echo(NEXT_STEPS)


def _show_status(exp: Experiment, show_all: bool) -> None:
    root = Path(exp.profile.output_root)
    try:
        dirs = run_records.find_runs(root) if show_all else [run_records.resolve_run(None, root)]
        click.echo(status.table(status.collect(dirs)))
    except run_records.RunError as exc:
        fail(f"status: {exc}")
    except SlurmError as exc:
        fail(f"status: {exc}", EXIT_FAILED)
