"""Submission of a ``plan.Plan``: single runs, job arrays for sweeps, chained segments, through the profile's
back-end (``backends.slurm.SlurmBackend``: sbatch through submitit; ``backends.local.LocalBackend``: submitit's
local controller running launch_local.sh).

* single run: one job, ``record.json`` with its id;
* segments (``segments=N``): N jobs in one run directory, each ``--dependency=afterok:<previous>`` (or afterany);
  Megatron resumes from ``--load`` (= ``--save``) and ``--exit-duration-in-mins`` comes from the time limit;
* sweep: one array task per variant (``tasks/<chunk>_<task>/job.json``, the node entry replaces ``%a``),
  ``--array=0-N%P``; more variants than MaxArraySize are split into chunks, each chunk starting after the previous
  one (``afterany``), so no more than P tasks ever run at once.

Nothing is submitted unless the validation rules pass and every file rendered (``plan.prepare``, then the plan,
made once for the new run directory's path before the directory is created). The plan is then written and
submitted job by job; ``submit --dry-run`` prints the same plan for a placeholder directory instead
(``plan_records.dry_run``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import again, guard, plan, plan_records, run_records, sweep_checks
from .backends import backend, slurm, slurm_limits
from .backends.base import JobRequest, LaunchError, SubmittedThenFailed
from .checks import InvalidSubmission
from ..spec.config import Experiment
from .plan import Plan, PlannedFile, PlannedJob, Request
from ..spec.sweep import Sweep

__all__ = ["InvalidSubmission", "LaunchError", "Submission", "resubmit", "submit", "submit_run", "submit_sweep"]


@dataclass
class Submission:
    """A submitted run."""

    run_dir: Path
    """Its new run directory."""
    record: run_records.RunRecord
    """Its record.json: every submitted job's id."""
    warnings: list[str] = field(default_factory=list)
    """What the cluster's limits may do to it (it was not refused)."""


# ------------------------------------------------------------------------------------------------- submit a plan
def submit(request: Request) -> Submission:
    """Check, plan, then write and submit the plan in a new run directory (under the output root's submit lock,
    after making sure no live run writes the same checkpoint directory)."""
    request = plan.prepare(request)
    found = slurm_limits.limits(request.exp.profile.account) if request.sweep is not None and request.slurm else None
    size = found.max_array_size if found else slurm.DEFAULT_MAX_ARRAY_SIZE
    root = request.exp.profile.output_root
    run_dir = run_records.fresh_run_dir(root, request.name)
    the_plan = plan.make_plan(request, str(run_dir), size)     # render errors surface before the directory exists
    warnings = slurm_limits.check(sum(len(j.tasks) for j in the_plan.jobs), len(the_plan.jobs), found) if found \
        else []                                                 # a limit that would stop it half-way: refused here
    try:
        with run_records.submit_lock(root):
            guard.refuse_shared_checkpoints(request)
            submission = _execute(the_plan, run_dir)
    except OSError as exc:                                      # the output root itself: nothing was created
        raise LaunchError(_unwritable(run_dir, exc, root)) from exc
    submission.warnings.extend([f"{p.setting}: {p.message} (fix: {p.fix})" for p in request.notes] + warnings)
    return submission


def submit_run(exp: Experiment, overrides: list[str] | None = None, segments: int = 1,
               segment_dependency: str = "afterok", preflight: bool = False,
               submitted_from: str | None = None) -> Submission:
    """One run (or a chain of ``segments`` jobs) in a new run directory."""
    return submit(Request(exp, tuple(overrides or ()), segments=segments, segment_dependency=segment_dependency,
                          preflight=preflight, submitted_from=submitted_from))


def submit_sweep(base: Experiment, sweep: Sweep, overrides: list[str] | None = None,
                 submitted_from: str | None = None) -> Submission:
    """One array task per sweep variant, in a new run directory."""
    return submit(Request(base, tuple(overrides or ()), sweep=sweep, submitted_from=submitted_from))


def resubmit(run_dir: str | os.PathLike[str]) -> Submission:
    """``submit --from RUN_DIR``: the same resolved profile, recipe (and sweep / segments) in a new run."""
    return submit(again.request_from_record(Path(run_dir)))


class Interrupted(Exception):
    """SIGINT (Ctrl-C) or SIGTERM arrived while the plan's jobs were being submitted."""


class Signals:
    """SIGINT and SIGTERM while jobs are submitted: ``Interrupted`` at once, or, inside ``deferred`` (one sbatch
    and the recording of its id), right after it, so a job Slurm accepted is never left unrecorded."""

    def __init__(self) -> None:
        self.pending: str | None = None
        self.deferring = False

    def handle(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.deferring:
            self.pending = name
            return
        raise Interrupted(name)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending:
            raise Interrupted(self.pending)


@contextlib.contextmanager
def _interruptible() -> Iterator[Signals]:
    """SIGINT and SIGTERM handled by a ``Signals`` while jobs are submitted (main thread only)."""
    signals = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    saved = {sig: signal.signal(sig, signals.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _execute(p: Plan, run_dir: Path) -> Submission:
    """Create the run directory and carry out the plan in it. A file that cannot be written (disk full, read-only)
    undoes the submission: the jobs already submitted are cancelled and the directory is removed, so no run
    claims a submission that is not whole. SIGINT or SIGTERM half-way cancels what was submitted and leaves a
    record that says so (``status`` shows the cancelled jobs), never jobs nobody can see."""
    ids: list[str] = []
    written: list[str] = []
    try:
        with _interruptible() as signals:
            return _carry_out(p, run_records.claim(run_dir), ids, written, signals)
    except Interrupted as exc:
        cancelled = _cancel(p, ids)
        record = plan_records.run_record(p, ids, plan_records.top_level(written))
        done = f"interrupted by {exc} after {len(ids)} of {len(p.jobs)} job(s) were submitted: {cancelled}"
        return _finish(run_dir, record, LaunchError(done))
    except OSError as exc:
        cancelled = _undo(p, run_dir, ids + ([exc.job_id] if isinstance(exc, SubmittedThenFailed) else []))
        raise LaunchError(_unwritable(run_dir, exc, p.request.exp.profile.output_root, cancelled)) from exc


def _unwritable(run_dir: Path, exc: OSError, root: str, cancelled: str = "nothing was submitted") -> str:
    """One line: which directory, why, the fix, and what became of the jobs."""
    why = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(run_dir) else ""
    return (f"profile.output_root: cannot write the run directory {run_dir}: {why}{where} (fix: free space in "
            f"or make {root} writable, or set another profile.output_root); {cancelled}")


def _cancel(p: Plan, ids: list[str]) -> str:
    """Cancel the jobs already submitted; what was done, as text."""
    for job_id_ in ids:
        try:
            backend(p.request.exp.profile.scheduler).cancel(job_id_, None, requeue=False)
        except (slurm.SlurmError, LaunchError, OSError):
            pass
    return f"job(s) {', '.join(ids)} cancelled" if ids else "nothing was submitted"


def _undo(p: Plan, run_dir: Path, ids: list[str]) -> str:
    """Cancel the jobs already submitted and remove the half-written run directory; what was done, as text."""
    cancelled = _cancel(p, ids)
    shutil.rmtree(run_dir, ignore_errors=True)
    return f"{cancelled} and the run directory removed" if ids else cancelled


def _carry_out(p: Plan, run_dir: Path, ids: list[str], written: list[str], signals: Signals) -> Submission:
    """Write the plan's files, then each job's files and the job itself, in order; record what was submitted
    (``ids`` and ``written`` grow as jobs are submitted and files written)."""
    written += [_write(run_dir, f) for f in p.files]
    written += [_write(run_dir, PlannedFile(path, text)) for path, text in p.request.provenance_files]
    error: Exception | None = None
    for job in p.jobs:
        for task in job.tasks:
            (run_dir / task.dir / "logs").mkdir(parents=True)
        files = job.files_to_write(ids)
        written += [_write(run_dir, f) for f in files]
        try:
            with signals.deferred():
                ids.append(_start(p, job, files, run_dir))
                run_records.journal(run_dir, p.request.exp.profile.scheduler, ids[-1])
        except LaunchError as exc:
            error = exc
            break
        for task in job.tasks:
            _write(run_dir, plan_records.task_record(p, task, ids[-1], run_records.now_iso()))
    record = plan_records.run_record(p, ids, plan_records.top_level(written))
    return _finish(run_dir, record, error)


def _start(p: Plan, job: PlannedJob, files: list[PlannedFile], run_dir: Path) -> str:
    """Submit one planned job through the profile's back-end; its scheduler id."""
    exp = job.allocation or p.request.exp
    request = JobRequest(
        run_dir=run_dir, script=job.script, script_text=next((f.text for f in files if f.path == job.script), ""),
        ntasks=job.ntasks, name=p.request.name if job.tasks else exp.recipe.name, **sweep_checks.allocation(exp),
        task_dirs=tuple(t.dir for t in job.tasks))
    return backend(exp.profile.scheduler).submit(request)


def _write(run_dir: Path, file: PlannedFile) -> str:
    """Write one planned file; an OSError names the file (a full disk's error does not by itself)."""
    try:
        (run_dir / file.path).parent.mkdir(parents=True, exist_ok=True)   # provenance/, tasks/<i>/
        run_records.write_new(run_dir / file.path, file.text, file.mode)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(run_dir / file.path)) from exc
    return file.path


def _finish(run_dir: Path, record: run_records.RunRecord, error: Exception | None) -> Submission:
    if error is not None:
        record.error = str(error)
    run_records.write_record(run_dir, record)
    (run_dir / run_records.JOURNAL).unlink(missing_ok=True)     # the record says it all now
    if error is not None:
        raise LaunchError(f"{error} (run directory {run_dir}, record.json lists what was submitted)") from error
    return Submission(run_dir, record)
