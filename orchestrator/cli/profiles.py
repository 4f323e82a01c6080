"""``orchestrator profiles`` and ``orchestrator recipes``: what is known, and where it comes from."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import click

from ..spec.config import Recipe, Switches, find_file, list_names, load_profile, load_recipe
from ..observe import tables
from ..spec.schema import field_doc
from .common import handle_config_errors


@click.command("profiles")
@click.option("--profiles-dir", envvar="ORCHESTRATOR_PROFILES_DIR", default=None)
@handle_config_errors
def profiles(profiles_dir: str | None) -> None:
    """Table of known cluster profiles and the file each comes from."""
    rows = []
    for name in list_names("profiles", profiles_dir):
        prof = load_profile(name, profiles_dir)
        rows.append((name, prof.scheduler, f"{prof.nodes}x{prof.gpus_per_node}", str(find_file("profiles", name, profiles_dir)),
                     prof.description))
    _table(("PROFILE", "SCHEDULER", "NODESxGPUS", "FILE", "DESCRIPTION"), rows)


@click.command("recipes")
@click.option("--recipes-dir", envvar="ORCHESTRATOR_RECIPES_DIR", default=None)
@click.option("--explain", metavar="RECIPE", default=None, help="list a recipe's switches with their docs")
@handle_config_errors
def recipes(recipes_dir: str | None, explain: str | None) -> None:
    """Table of known recipes, or one recipe's switches (--explain)."""
    if explain:
        _explain(load_recipe(explain, recipes_dir))
        return
    rows = [(name, str(find_file("recipes", name, recipes_dir)), load_recipe(name, recipes_dir).description)
            for name in list_names("recipes", recipes_dir)]
    _table(("RECIPE", "FILE", "DESCRIPTION"), rows)


def _explain(recipe: Recipe) -> None:
    rows = [(f.name, str(getattr(recipe.switches, f.name)), field_doc(Switches, f.name))
            for f in dataclasses.fields(Switches)]
    _table(("SWITCH", "VALUE", "WHAT IT DOES"), rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    click.echo(tables.table(header, rows))
