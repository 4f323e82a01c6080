"""``orchestrator validate``: every problem of a configuration, one line each; exit 2 when any is an error."""

from __future__ import annotations

import click

from ..submit.plan import Request
from ..submit.rules import strict_memory as memory_as_error
from ..submit.verdict import verdict
from .common import experiment_options, handle_config_errors, load, report_problems


@click.command("validate")
@experiment_options
@click.option("--no-megatron", is_flag=True, help="skip Megatron's own argument parser even where installed")
@click.option("--strict-memory", is_flag=True, help="a predicted peak over the GPU's memory is an error, not a warning")
@handle_config_errors
def validate(profile: str, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
             recipes_dir: str | None, no_megatron: bool, strict_memory: bool) -> None:
    """Check PROFILE + RECIPE (+ overrides) as submit does: every rule, Megatron's parser where importable, and
    the rendering of every file (the verdict of `submit --dry-run`)."""
    exp = load(profile, recipe, overrides, profiles_dir, recipes_dir)
    found = verdict(Request(exp, overrides, megatron_check=not no_megatron))   # the same as submit --dry-run's
    report_problems(memory_as_error(list(found.problems)) if strict_memory else list(found.problems))
    for warning in found.dry.plan.warnings if found.dry else []:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"ok: {exp.profile.name} + {exp.recipe.name}: {exp.nodes} nodes x {exp.profile.gpus_per_node} GPUs, "
               f"world size {exp.world_size}")
