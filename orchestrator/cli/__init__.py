"""The ``orchestrator`` command: one module per verb, each thin (parse, call, print).

Verbs are imported when they run (``LazyGroup``): ``status`` must not pay for the submit side's imports (submitit,
Jinja2, the estimator) on every call of a ``--follow`` loop or a script polling a 10,000-task sweep."""

from __future__ import annotations

import importlib

import click

from .. import __version__

VERBS: dict[str, str] = {
    "profiles": "profiles:profiles", "recipes": "profiles:recipes", "validate": "validate:validate",
    "estimate": "estimate:estimate", "plan": "plan:plan", "render": "render:render", "submit": "submit:submit",
    "preflight": "preflight:preflight", "status": "status:status_cmd", "logs": "logs:logs", "cancel": "cancel:cancel",
    "report": "report:report", "compare": "compare:compare", "data": "data:data",
    "runsh": "runsh:runsh",
}
"""Verb name -> ``module:attribute`` under ``orchestrator.cli``, in the order ``--help`` lists them."""


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (``--help`` imports them all, to show their help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in VERBS:
            return None
        module, attribute = VERBS[cmd_name].split(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orchestrator")
def main() -> None:
    """Launch DeepSeek-V3 pre-training with Megatron-Core on Slurm, and prove the speed you got."""
