"""``orchestrator validate``: every problem of a configuration, one line each; exit 2 when any is an error."""

from __future__ import annotations

import click

from ..submit.checks import all_problems
from ..spec.megatron_args import build
from .common import experiment_options, handle_config_errors, load, report_problems


@click.command("validate")
@experiment_options
@click.option("--no-megatron", is_flag=True, help="skip Megatron's own argument parser even where installed")
@handle_config_errors
def validate(profile: str, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
             recipes_dir: str | None, no_megatron: bool) -> None:
    """Check PROFILE + RECIPE (+ overrides) against every rule, and Megatron's parser where importable."""
    exp = load(profile, recipe, overrides, profiles_dir, recipes_dir)
    report_problems(all_problems(exp, with_megatron=not no_megatron))
    for warning in build(exp, "/tmp/check").warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"ok: {exp.profile.name} + {exp.recipe.name}: {exp.nodes} nodes x {exp.profile.gpus_per_node} GPUs, "
               f"world size {exp.world_size}")
