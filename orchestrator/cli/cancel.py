"""``orchestrator cancel``: cancel (or requeue) the jobs of a run, one job, or one array task."""

from __future__ import annotations

from pathlib import Path

import click

from ..submit import run_records
from ..submit import backends
from ..submit.backends.base import Backend, JobState, LaunchError
from ..submit.backends.slurm import SlurmError
from .common import job_selection_options, select_job
from .output import EXIT_FAILED, fail


def _targets(record: run_records.RunRecord, job: str | None) -> list[str]:
    ids = record.job_ids
    if job is None:
        return ids
    known = set(ids) | {t.job_id for t in record.tasks}
    if job not in known:
        some = [*ids, *(t.job_id for t in record.tasks[:5])]
        more = f", ... ({len(known)} in all)" if len(known) > len(some) else ""
        fail(f"--job: {job} is not a job of run {record.run_id} (fix: one of {', '.join(some)}{more})")
    return [job]


def _state(target: str, record: run_records.RunRecord, states: dict[str, JobState]) -> JobState | None:
    """A job's state; an array job's from its tasks (the scheduler lists those): ended when every task has,
    unknown when none is known, else the first task still live."""
    tasks = [states[t.job_id] for t in record.tasks if t.job_id.partition("_")[0] == target and t.job_id in states]
    if not tasks:
        return states.get(target)
    live = [t for t in tasks if not t.terminal and t.source != "none"]
    if live:
        return live[0]
    known = [t for t in tasks if t.source != "none"]
    return known[-1] if known else tasks[0]


def _act(back: Backend, target: str, run_dir: Path, said: str, requeue: bool = False) -> bool:
    """Cancel (or requeue) one job or array task of the run, when the scheduler's view says it is the run's;
    False when it is not (it is left alone and the line says why)."""
    base, _, task = target.partition("_")
    if (why := back.not_the_runs(base, run_dir)) is not None:
        click.echo(f"{target} is not a job of run {run_dir.name}: {why}; left alone", err=True)
        return False
    try:
        back.cancel(base, int(task) if task else None, requeue)
    except LaunchError as exc:
        fail(f"--requeue: {exc}")
    except SlurmError as exc:
        fail(f"cancel: {exc}", EXIT_FAILED)
    click.echo(f"{'requeued' if requeue else 'cancelled'} {target} ({said})")
    return True


def _cancel_killed_submit(run_dir: Path) -> None:
    """A submit killed before it wrote record.json: cancel what its journal lists (this run's jobs only)."""
    done = [_act(backends.backend(name), job_id, run_dir, "a submit killed before it wrote record.json")
            for name, job_id in run_records.journaled(run_dir)]
    if not all(done):
        raise SystemExit(EXIT_FAILED)


@click.command("cancel")
@job_selection_options
@click.option("--requeue", is_flag=True, help="requeue instead of cancelling (the job runs again, log appended)")
def cancel(run: str | None, root: Path | None, job: str | None, task: str | None, requeue: bool) -> None:
    """Cancel every job of RUN (a directory or run id; default the newest run)."""
    if run and (Path(run) / run_records.JOURNAL).is_file() and not (Path(run) / run_records.RECORD).exists():
        _cancel_killed_submit(Path(run).resolve())
        return
    run_dir, record, job = select_job("cancel", run, root, job, task)
    back = backends.backend(record.backend)
    try:
        states = back.states([(run_dir, record)])
    except SlurmError as exc:
        fail(f"cancel: {exc}", EXIT_FAILED)
    refused = False
    for target in _targets(record, job):
        state = _state(target, record, {job_id: s for (_d, job_id), s in states.items()})
        if state is not None and state.terminal and not requeue:
            click.echo(f"{target} ({record.run_id}) had already ended ({state.state}): nothing to cancel")
            continue
        if state is not None and state.source == "none":
            click.echo(f"{target} ({record.run_id}) is not known to the scheduler: nothing to cancel")
            continue
        refused = not _act(back, target, run_dir, record.run_id, requeue) or refused
    if refused:
        raise SystemExit(EXIT_FAILED)
