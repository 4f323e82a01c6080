"""``orchestrator preflight``: the short job that proves rendezvous, binding, GPUs, versions and Megatron's args."""

from __future__ import annotations

import click

from ..submit import launch
from .common import check_preflight, experiment_options, handle_config_errors, load, print_submission, \
    submission_errors


@click.command("preflight")
@experiment_options
@click.option("--no-wait", is_flag=True, help="submit and return (see `orchestrator status` / `logs`)")
@handle_config_errors
def preflight(profile: str, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
              recipes_dir: str | None, no_wait: bool) -> None:
    """Run the preflight payload with PROFILE + RECIPE's allocation; exit 1 if any rank's check failed."""
    exp = load(profile, recipe, overrides, profiles_dir, recipes_dir)
    with submission_errors():
        sub = launch.submit_run(exp, list(overrides), preflight=True)
    print_submission(sub)
    if not no_wait:
        check_preflight(sub, exp.world_size)
