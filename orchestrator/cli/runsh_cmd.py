"""``orchestrator runsh``: what ``bash run.sh`` calls, with run.sh's variables in the environment."""

from __future__ import annotations

import os

import click

from .. import render as render_mod
from ..checks import all_problems
from ..config import load_experiment, load_profile
from ..runsh import CLUSTER_RECIPE, LOCAL_RECIPE, check_required, overrides_from_env
from .common import handle_config_errors
from .validate_cmd import report_problems


@click.command("runsh", hidden=True)
@handle_config_errors
def runsh() -> None:
    """Validate, render and (unless DRY_RUN=1) submit what run.sh's variables describe."""
    env = dict(os.environ)
    profile_name = env.get("PROFILE") or "local"
    recipe = env.get("RECIPE") or (LOCAL_RECIPE if load_profile(profile_name).scheduler == "local" else CLUSTER_RECIPE)
    exp = load_experiment(profile_name, recipe, overrides_from_env(env))
    check_required(exp.profile)
    report_problems(all_problems(exp, with_megatron=False))
    if env.get("DRY_RUN", "") not in ("", "0"):
        rendered = render_mod.render(exp, os.path.abspath(f"{exp.profile.output_root}/{exp.recipe.name}-dry-run"))
        for warning in rendered.args.warnings:
            click.echo(f"warning: {warning}", err=True)
        for name, text in rendered.files.items():
            click.echo(f"===== {name} =====\n{text}")
        click.echo("DRY_RUN=1: nothing was submitted")
        return
    raise click.ClickException("submission from run.sh is not wired yet (use DRY_RUN=1)")
