"""What a submission must not overwrite: a checkpoint directory that a live run still writes.

A run's checkpoints go to ``<run dir>/checkpoints`` (never shared: every run directory is new) unless
``training.checkpoint_dir`` names one; runs that name the same directory continue each other's training (``submit
--from`` after a failure resumes from the last checkpoint). Two of them writing it at once would overwrite each
other's checkpoints and tracker file, so a submission is refused while another run under the same output root
that names the same directory has a job that has not ended (pending, running, requeued). ``launch`` asks under
the output root's submit lock, so two submits at once cannot both pass.
"""

from __future__ import annotations

from pathlib import Path

from . import run_records
from .backends import backend
from .backends.base import JobState
from .checks import InvalidSubmission
from .plan import Request
from .problem import Problem

SETTING = "training.checkpoint_dir"


def _checkpoint_dir(record: run_records.RunRecord) -> str | None:
    training = record.recipe.get("resolved", {}).get("training", {}) if isinstance(record.recipe, dict) else {}
    value = training.get("checkpoint_dir") if isinstance(training, dict) else None
    return str(Path(value).expanduser().resolve()) if isinstance(value, str) and value else None


def _sharing(root: str, ckpt: str) -> list[tuple[Path, run_records.RunRecord]]:
    """Runs under ``root`` whose record names checkpoint directory ``ckpt`` (unreadable records are skipped)."""
    found = []
    for run_dir in run_records.find_runs(Path(root).expanduser().resolve()):
        try:
            record = run_records.load_record(run_dir)
        except (run_records.RunError, TypeError, ValueError, KeyError, AttributeError):
            continue
        if _checkpoint_dir(record) == ckpt:
            found.append((run_dir, record))
    return found


def live_writers(root: str, ckpt: str) -> list[str]:
    """``run R (job 12 RUNNING)`` for every job not ended of a run under ``root`` that writes ``ckpt``."""
    runs = _sharing(root, ckpt)
    states: dict[tuple[Path, str], JobState] = {}
    for name in sorted({r.backend for _d, r in runs}):
        states.update(backend(name).states([(d, r) for d, r in runs if r.backend == name]))
    return [f"run {d.name} (job {job_id} {state.state})" for (d, job_id), state in states.items()
            if not state.terminal and state.state != "UNKNOWN"]


def refuse_shared_checkpoints(request: Request) -> None:
    """InvalidSubmission when the request's checkpoint directory is being written by a live run."""
    value = request.exp.recipe.training.checkpoint_dir
    if not value:
        return
    ckpt = str(Path(value).expanduser().resolve())
    busy = live_writers(request.exp.profile.output_root, ckpt)
    if busy:
        raise InvalidSubmission([Problem(
            SETTING, f"{ckpt} is still being written by {', '.join(busy)}: two runs would overwrite each "
                     "other's checkpoints",
            f"wait until it ends or cancel it (`orchestrator cancel {busy[0].split()[1]}`), then submit again "
            f"(it resumes from the last checkpoint), or set another {SETTING}")])
