"""Options and error handling shared by the CLI verbs."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from ..submit import run_records
from ..observe import status

from ..spec.config import Experiment, load_experiment
from ..spec.typed import ConfigError

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")

EXIT_INVALID = 2
EXIT_FAILED = 1


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Print one line to stderr and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_config_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a ConfigError anywhere below a verb into one line and exit status 2."""
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as err:
            fail(str(err))
    return wrapper


def experiment_options(func: F) -> F:
    """--profile, --recipe, --set, --profiles-dir, --recipes-dir."""
    options = [
        click.option("--profile", "-p", required=True, help="cluster profile name or YAML path"),
        click.option("--recipe", "-r", default=None, help="recipe name or YAML path (default: the profile's default_recipe)"),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="override a recipe setting (parallel.pp=4) or a profile one (profile.nodes=2)"),
        click.option("--profiles-dir", envvar="ORCHESTRATOR_PROFILES_DIR", default=None,
                     help="directory of your own profiles (also $ORCHESTRATOR_PROFILES_DIR)"),
        click.option("--recipes-dir", envvar="ORCHESTRATOR_RECIPES_DIR", default=None,
                     help="directory of your own recipes (also $ORCHESTRATOR_RECIPES_DIR)"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load(profile: str, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
         recipes_dir: str | None) -> Experiment:
    """The experiment named by the common options."""
    return load_experiment(profile, recipe, list(overrides), profiles_dir, recipes_dir)


def print_files(files: Iterable[tuple[str, str]]) -> None:
    """The dry-run printer: every (path, text), each under a ``===== path =====`` header."""
    for name, text in files:
        click.echo(f"===== {name} =====\n{text}")


def job_selection_options(func: F) -> F:
    """RUN (a directory or run id; default the newest run), --root, and --job / --task to pick one job of it."""
    options = [
        click.argument("run", required=False),
        click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="where run directories are (default ./runs or $ORCHESTRATOR_RUNS)"),
        click.option("--job", default=None, help="only this job or array task (12, 12_3)"),
        click.option("--task", default=None, help="only this sweep task, by index (3) or variant name"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def select_job(verb: str, run: str | None, root: Path | None, job: str | None,
               task: str | None) -> tuple[Path, run_records.RunRecord, str | None]:
    """The run directory, its record and the job id the selection options name (one line + exit 2 if none)."""
    try:
        run_dir = run_records.resolve_run(run, root or status.default_root())
        record = run_records.load_record(run_dir)
        return run_dir, record, run_records.task_job_id(record, task) if task is not None else job
    except run_records.RunError as exc:
        fail(f"{verb}: {exc} (fix: pass a run directory or --root)")
