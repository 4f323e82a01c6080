"""The one small interface every back-end offers: submit a job, read the states of runs' jobs, cancel one.

A back-end knows schedulers, not plans: ``submit.launch`` hands it a ``JobRequest`` (what the plan decided) and
``observe.status`` / ``cli.cancel`` ask it about the jobs a run record lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..run_records import RunRecord

# states after which a job (or array task) will not change any more unless requeued
TERMINAL_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "TIMEOUT", "REVOKED",
})
SUBMITIT_DIR = ".submitit"
"""Where submitit keeps its copy of what it submitted, and its state, inside a run directory."""


class LaunchError(RuntimeError):
    """The scheduler refused or failed a submission (message is one line)."""


class SubmittedThenFailed(OSError):
    """The scheduler took the job, then a file of its submission could not be written: the job to cancel."""

    def __init__(self, exc: OSError, job_id: str) -> None:
        super().__init__(exc.errno, exc.strerror, exc.filename)
        self.job_id = job_id


@dataclass(frozen=True)
class JobState:
    """One job or one array task as the scheduler sees it."""

    job_id: str                      # "12" for a plain job, "12_3" for array task 3 of array job 12
    state: str                       # first word of Slurm's state: COMPLETED, FAILED, CANCELLED, RUNNING, ...
    exit_code: int | None = None     # the batch script's exit status (None while unknown)
    signal: int | None = None        # the signal that ended it (0 = none)
    elapsed_s: int | None = None     # wall time used so far
    nodes: str = ""                  # Slurm's compact node list, e.g. "n[1-2]"; "" while pending
    array_task_id: int | None = None
    raw_state: str = ""              # Slurm's full state text, e.g. "CANCELLED by 0"
    source: str = "sacct"            # "sacct", "scontrol" (accounting fallback), "local" or "none"
    derived_exit_code: int | None = None   # highest exit code of the job's srun steps (when Slurm knows it)
    note: str = ""                   # what the scheduler says besides the state: a node that failed under the job
    #                                  and its reason, where the state came from when accounting did not answer

    @property
    def array_job_id(self) -> str | None:
        return self.job_id.split("_", 1)[0] if self.array_task_id is not None else None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class JobRequest:
    """One job as the plan decided it, for a back-end to start."""

    run_dir: Path
    """The run directory (already holding the job's files)."""
    script: str
    """Its script, relative to the run directory (sbatch.sh, launch_local.sh)."""
    script_text: str
    """The script's text (what sbatch is given)."""
    ntasks: int
    """Ranks of its allocation."""
    name: str
    """Log file stem of a local job: the recipe's name, or for an array the sweep's."""
    gpus_per_node: int
    """GPUs of its allocation per node."""
    time_limit_s: int
    """Wall-clock limit of one job (or one local sweep task)."""
    task_dirs: tuple[str, ...] = ()
    """An array's task directories (relative): the local back-end runs them one after another; Slurm's array
    script reaches them through %a."""


class Backend(Protocol):
    """What a scheduler offers the toolkit."""

    name: str

    def submit(self, job: JobRequest) -> str:
        """Start the job; its scheduler id. Raises LaunchError when the scheduler refuses it."""
        ...

    def states(self, runs: Sequence[tuple[Path, RunRecord]]) -> dict[tuple[Path, str], JobState]:
        """The state of every job and array task these runs list, by (run directory, job id)."""
        ...

    def cancel(self, job_id: str, task: int | None, requeue: bool) -> None:
        """Cancel (or requeue) one job or one array task."""
        ...

    def not_the_runs(self, job_id: str, run_dir: Path) -> str | None:
        """Why the live job ``job_id`` is not the run's own (another user's, or its output outside the run
        directory: a record names any id it likes); None when it is, or when the scheduler does not know it."""
        ...


def listed_ids(record: RunRecord) -> list[str]:
    """Every job id and array task id a run record lists."""
    return [j.job_id for j in record.jobs if j.job_id] + [t.job_id for t in record.tasks]
