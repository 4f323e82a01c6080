"""Submission through submitit of a ``plan.Plan``: single runs, job arrays for sweeps, chained segments; Slurm or local.

Slurm: ``TemplateSlurmExecutor`` is submitit's ``SlurmExecutor`` whose submission file is our rendered
``templates/sbatch.sh.j2`` text, so submitit writes the file, runs ``sbatch``, parses the job id and returns its
``SlurmJob``. Local: ``ScriptLocalExecutor`` is submitit's ``LocalExecutor`` running the rendered
``launch_local.sh`` (one process per rank, the same node entry) from a pickled call whose result is the exit status.

* single run: one job, ``record.json`` with its id;
* segments (``segments=N``): N jobs in one run directory, each ``--dependency=afterok:<previous>`` (or afterany);
  Megatron resumes from ``--load`` (= ``--save``) and ``--exit-duration-in-mins`` comes from the time limit;
* sweep: one array task per variant (``tasks/<chunk>_<task>/job.json``, the node entry replaces ``%a``),
  ``--array=0-N%P``; more variants than MaxArraySize are split into chunks, each chunk starting after the previous
  one (``afterany``), so no more than P tasks ever run at once.

Nothing is submitted unless the validation rules pass and every file rendered (``plan.prepare``, then the plan,
made once for the new run directory's path before the directory is created). The plan is then written and
submitted job by job; ``submit --dry-run`` prints the same plan for a placeholder directory instead
(``plan.dry_run``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit

from . import plan, run_records
from .backends import slurm
from .checks import InvalidSubmission
from ..spec.config import Experiment
from .plan import LaunchError, Plan, PlannedFile, PlannedJob, Request
from ..spec.sweep import Sweep

__all__ = ["InvalidSubmission", "LaunchError", "Submission", "resubmit", "submit", "submit_run", "submit_sweep"]

SUBMITIT_DIR = ".submitit"


@dataclass
class Submission:
    run_dir: Path
    record: run_records.RunRecord
    jobs: list[Any] = field(default_factory=list)     # submitit Job objects, in submission order


# ------------------------------------------------------------------------------------------------- executors
class TemplateSlurmExecutor(submitit.SlurmExecutor):
    """submitit's SlurmExecutor submitting a rendered sbatch script as it is."""

    def __init__(self, folder: Path, script: str, num_tasks: int) -> None:
        super().__init__(folder)
        self._script = script
        self._ntasks = num_tasks

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        return self._script

    def _num_tasks(self) -> int:
        return self._ntasks

    def submit_script(self) -> Any:
        try:
            return self._submit_command("")
        except (submitit.core.utils.FailedJobError, OSError) as exc:
            lines = str(exc).strip().splitlines()
            raise LaunchError(f"sbatch refused the job: {lines[-1] if lines else repr(exc)}") from exc


def run_local_script(script: str, log_dir: str, name: str) -> int:
    """The local job's body (runs inside submitit's local controller): bash SCRIPT, logs appended; exit status."""
    job_id = os.environ.get("SUBMITIT_LOCAL_JOB_ID", str(os.getpid()))
    return _run_logged(script, Path(log_dir) / f"{name}_{job_id}.log")


def run_local_tasks(tasks: list[tuple[str, str, str]]) -> int:
    """A sweep's body on the local back-end: each variant's launch_local.sh in turn, since they share this
    machine's GPUs. Task i logs to ``<name>_<controller>_<i>.log``, leaves its start time (epoch seconds) in
    TASK_STARTED and its exit status in TASK_EXIT."""
    controller = os.environ.get("SUBMITIT_LOCAL_JOB_ID", str(os.getpid()))
    worst = 0
    for index, (script, log_dir, name) in enumerate(tasks):
        (Path(script).parent / run_records.TASK_STARTED).write_text(f"{time.time():.3f}\n")
        code = _run_logged(script, Path(log_dir) / f"{name}_{controller}_{index}.log")
        (Path(script).parent / run_records.TASK_EXIT).write_text(f"{code}\n")
        worst = worst or code
    return worst


def _run_logged(script: str, log_path: Path) -> int:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(["bash", script], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait()
        finally:
            if proc.poll() is None:             # cancelled: stop every rank of the launcher's session
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()


class ScriptLocalExecutor(submitit.LocalExecutor):
    """submitit's LocalExecutor running a rendered launch_local.sh as one local job."""

    def submit_script(self, script: Path, log_dir: Path, name: str) -> Any:
        """One rendered launch_local.sh as one local job."""
        return self._submit_detached(run_local_script, str(script), str(log_dir), name)

    def submit_tasks(self, tasks: list[tuple[str, str, str]]) -> Any:
        """A local sweep: (script, log dir, name) per task, run one after another by one controller."""
        return self._submit_detached(run_local_tasks, tasks)

    def _submit_detached(self, func: Any, *args: Any) -> Any:
        """Start the controller detached from our stdin/stdout/stderr (it outlives this process: whoever reads
        our output must not wait for the job) with the toolkit importable."""
        package_root = str(Path(__file__).resolve().parents[2])   # the directory holding orchestrator/
        saved_path = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, saved_path) if p)
        saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            with open(os.devnull, "rb") as null, open(Path(self.folder) / "controller.out", "ab") as out:
                os.dup2(null.fileno(), 0)
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                return self.submit(func, *args)
        finally:
            for fd, saved in zip((0, 1, 2), saved_fds):
                os.dup2(saved, fd)
                os.close(saved)
            if saved_path is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved_path


def local_gpus(count: int) -> dict[str, Any]:
    """submitit's local controller sets CUDA_VISIBLE_DEVICES to the GPUs it was given (none by default, which hides
    every GPU from the ranks): give it the profile's count, taken from the GPUs visible to us."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    ids = tuple(int(x) for x in visible.split(",") if x.strip().isdigit()) if visible else ()
    return {"gpus_per_node": count, "visible_gpus": ids} if ids else {"gpus_per_node": count}


# ------------------------------------------------------------------------------------------------- submit a plan
def submit(request: Request) -> Submission:
    """Check, plan, then write and submit the plan in a new run directory."""
    request = plan.prepare(request)
    size = slurm.max_array_size() if request.sweep is not None and request.slurm else slurm.DEFAULT_MAX_ARRAY_SIZE
    run_dir = run_records.fresh_run_dir(request.exp.profile.output_root, request.name)
    the_plan = plan.make_plan(request, str(run_dir), size)     # render errors surface before the directory exists
    return _execute(the_plan, run_records.claim(run_dir))


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
    return submit(plan.request_from_record(Path(run_dir)))


def _execute(p: Plan, run_dir: Path) -> Submission:
    """Write the plan's files, then each job's files and the job itself, in order; record what was submitted."""
    written = [_write(run_dir, f) for f in p.files]
    jobs: list[Any] = []
    ids: list[str] = []
    error: Exception | None = None
    for job in p.jobs:
        for task in job.tasks:
            (run_dir / task.dir / "logs").mkdir(parents=True)
        files = job.files_to_write(ids)
        written += [_write(run_dir, f) for f in files]
        try:
            handle = _start(p, job, files, run_dir)
        except LaunchError as exc:
            error = exc
            break
        jobs.append(handle)
        ids.append(str(handle.job_id))
        for task in job.tasks:
            _write(run_dir, plan.task_record(p, task, ids[-1], run_records.now_iso()))
    record = plan.run_record(p, ids, plan.top_level(written))
    return _finish(run_dir, record, jobs, error)


def _start(p: Plan, job: PlannedJob, files: list[PlannedFile], run_dir: Path) -> Any:
    """Submit one planned job: sbatch its script, or start the local controller."""
    if p.request.slurm:
        script = next(f.text for f in files if f.path == job.script)
        (run_dir / SUBMITIT_DIR).mkdir(exist_ok=True)
        return TemplateSlurmExecutor(run_dir / SUBMITIT_DIR, script, job.ntasks).submit_script()
    exp = job.allocation or p.request.exp
    executor = ScriptLocalExecutor(run_dir / SUBMITIT_DIR)
    limit = slurm.parse_elapsed(exp.profile.time_limit) or 3600
    executor.update_parameters(timeout_min=max(1, max(1, len(job.tasks)) * limit // 60), tasks_per_node=1,
                               nodes=1, **local_gpus(exp.profile.gpus_per_node))
    if not job.tasks:
        return executor.submit_script(run_dir / job.script, run_dir / "logs", exp.recipe.name)
    return executor.submit_tasks([(str(run_dir / t.dir / "launch_local.sh"), str(run_dir / t.dir / "logs"),
                                   p.request.name) for t in job.tasks])


def _write(run_dir: Path, file: PlannedFile) -> str:
    run_records.write_new(run_dir / file.path, file.text, file.mode)
    return file.path


def _finish(run_dir: Path, record: run_records.RunRecord, jobs: list[Any], error: Exception | None) -> Submission:
    if error is not None:
        record.error = str(error)
    run_records.write_record(run_dir, record)
    if error is not None:
        raise LaunchError(f"{error} (run directory {run_dir}, record.json lists what was submitted)") from error
    return Submission(run_dir, record, jobs)
