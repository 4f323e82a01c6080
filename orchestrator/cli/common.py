"""Options, error handling and output shared by the CLI verbs (the verbs call library functions and these only)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from .. import estimate
from ..observe import preflight_reports, status
from ..spec.config import Experiment, load_experiment
from ..spec.schema import ConfigError
from ..submit import launch, render, run_records
from ..submit.problem import Problem
from ..submit.rules import blocking
from .output import EXIT_FAILED, EXIT_INVALID, SCREENFUL, fail, run_error

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")

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
        fail(run_error(verb, exc))


# ------------------------------------------------------------------------------------------------- output
def render_with_warnings(exp: Experiment, run_dir: str) -> render.Rendered:
    """Render every file, printing each Megatron-version translation as a warning on stderr."""
    rendered = render.render(exp, run_dir)
    for warning in rendered.args.warnings:
        click.echo(f"warning: {warning}", err=True)
    return rendered


def report_problems(problems: list[Problem], for_submit: bool = True) -> None:
    """Print every problem; exit 2 (nothing rendered or submitted) when one of them blocks."""
    for problem in problems:
        click.echo(str(problem), err=True)
    if stops := blocking(problems, for_submit):
        click.echo(f"{len(stops)} problem(s) to fix: nothing was rendered or submitted", err=True)
        raise SystemExit(EXIT_INVALID)


@contextmanager
def submission_errors() -> Iterator[None]:
    """Blocking problems → one line each + exit 2; a refused or failed submission → one line + exit 1."""
    try:
        yield
    except launch.InvalidSubmission as exc:
        report_problems(exc.problems)
        raise SystemExit(2) from exc
    except (launch.LaunchError, run_records.RunError) as exc:
        fail(str(exc), EXIT_FAILED)


def print_submission(sub: launch.Submission, screenful: int = SCREENFUL) -> None:
    """The run, each job, and each array task (the first and last few of a sweep larger than a screen)."""
    rec = sub.record
    for warning in sub.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"run {rec.run_id}: {sub.run_dir}")
    for job in rec.jobs:
        dep = f" after {job.dependency}" if job.dependency else ""
        arr = f" array {job.array}" if job.array else ""
        click.echo(f"  job {job.job_id}  {job.role}{arr}{dep}  log {job.log}")
    tasks = rec.tasks if len(rec.tasks) <= screenful else [*rec.tasks[:5], None, *rec.tasks[-5:]]
    for task in tasks:
        click.echo(f"  task {task.job_id}  {task.variant}  {task.dir}" if task else
                   f"  ... {len(rec.tasks) - 10} more tasks (record.json lists every one)")


def follow_and_exit(run_dir: Path) -> None:
    """Show the status table whenever it changes until every job ended; exit 1 unless all completed."""
    rows = status.follow([run_dir], on_change=lambda text: click.echo(text + "\n"),
                         shown_as=lambda ws: status.view(ws, False, SCREENFUL))
    if not all(r.ok for r in rows):
        raise SystemExit(EXIT_FAILED)


def check_preflight(sub: launch.Submission, expected: int) -> None:
    """Wait for a preflight job, print each rank's report and what the environment lacks; exit 1 on failure."""
    rows = status.follow([sub.run_dir], interval_s=1.0)
    found = preflight_reports.collect(sub.run_dir, (row.log for row in rows if row.log))
    for report in found:
        click.echo(preflight_reports.summary(report))
    if found:
        click.echo(f"versions: {json.dumps(found[0].get('versions'))}")
        for lack in found[0].get("lacks") or []:
            click.echo(f"lacks: {lack}")
    if not all(r.ok for r in rows) or len(found) != expected or not all(r.get("ok") for r in found):
        click.echo(f"preflight FAILED: {len(found)}/{expected} rank reports, job state "
                   f"{', '.join(r.state for r in rows)}; see {sub.run_dir}/logs", err=True)
        raise SystemExit(EXIT_FAILED)
    click.echo(f"preflight ok: {len(found)} ranks")


def gpu_or_fail(exp: Experiment) -> estimate.gpus.GpuSpec:
    """The profile's GPU, or one line naming the fix and exit 2."""
    try:
        return estimate.gpu_of(exp)
    except estimate.NoGpu as err:
        fail(f"profile.gpu: {err} (fix: --set profile.gpu=h200; known: {', '.join(estimate.gpus.GPUS)})")
    except estimate.gpus.UnknownGpu as err:
        fail(f"profile.gpu: {err.args[0]} (fix: --set profile.gpu=<one of them>)")
