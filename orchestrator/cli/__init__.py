"""The ``orchestrator`` command: one module per verb, each thin (parse, call, print)."""

from __future__ import annotations

import click

from .. import __version__
from .profiles import profiles, recipes
from .render_cmd import render
from .runsh_cmd import runsh
from .validate_cmd import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orchestrator")
def main() -> None:
    """Launch DeepSeek-V3 pre-training with Megatron-Core on Slurm, and prove the speed you got."""


for command in (profiles, recipes, render, validate, runsh):
    main.add_command(command)
