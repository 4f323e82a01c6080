"""The ``orchestrator`` command: one module per verb, each thin (parse, call, print)."""

from __future__ import annotations

import click

from .. import __version__
from .cancel import cancel
from .estimate import estimate
from .plan import plan
from .logs import logs
from .preflight import preflight
from .profiles import profiles, recipes
from .render import render
from .report import report
from .runsh import runsh
from .status import status_cmd
from .submit import submit
from .validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orchestrator")
def main() -> None:
    """Launch DeepSeek-V3 pre-training with Megatron-Core on Slurm, and prove the speed you got."""


for command in (profiles, recipes, validate, estimate, plan, render, submit, preflight, status_cmd, logs, cancel, report,
                runsh):
    main.add_command(command)
