"""The local back-end: a job is submitit's local controller running the rendered ``launch_local.sh`` (one process
per rank, through the same node entry a Slurm task runs); a sweep's controller runs its variants one after another,
since they share this machine's GPUs. States come from submitit's result file, the controller process and each
task's start/exit files; cancelling interrupts the controller, which stops its ranks.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..run_records import TASK_EXIT, TASK_STARTED, RunRecord, TaskEntry, logs_in
from .base import SUBMITIT_DIR, JobRequest, JobState, LaunchError
from .local_jobs import exit_file

def local_gpus(count: int) -> dict[str, Any]:
    """submitit's local controller sets CUDA_VISIBLE_DEVICES to the GPUs it was given (none by default, which hides
    every GPU from the ranks): give it the profile's count, taken from the GPUs visible to us."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    ids = tuple(int(x) for x in visible.split(",") if x.strip().isdigit()) if visible else ()
    return {"gpus_per_node": count, "visible_gpus": ids} if ids else {"gpus_per_node": count}


# ------------------------------------------------------------------------------------------------- states
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _exit_code(path: Path) -> int | None:
    """The exit status a local job's body wrote (None: none readable; a damaged file reads as none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    code = data.get("exit_code") if isinstance(data, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def local_state(run_dir: Path, job_id: str) -> JobState:
    """State of a local job from the exit file its body writes (JSON) / the controller process; submitit's
    pickles are never read."""
    submitted = run_dir / SUBMITIT_DIR / f"{job_id}_submitted.pkl"
    started = submitted.stat().st_mtime if submitted.exists() else None
    done = exit_file(run_dir, job_id)
    if (code := _exit_code(done)) is not None:
        elapsed = int(done.stat().st_mtime - started) if started else None
        return JobState(job_id, "COMPLETED" if code == 0 else "FAILED", exit_code=code,
                        elapsed_s=elapsed, source="local")
    if job_id.isdigit() and _alive(int(job_id)):
        return JobState(job_id, "RUNNING", elapsed_s=int(time.time() - started) if started else None,
                        source="local")
    return JobState(job_id, "CANCELLED", source="local")


def local_task_state(run_dir: Path, task: TaskEntry) -> JobState:
    """State of one task of a local sweep: its exit status file, else what its controller is doing."""
    exit_path = run_dir / task.dir / TASK_EXIT
    started = _started_at(run_dir / task.dir / TASK_STARTED)
    if exit_path.exists():
        text = exit_path.read_text(encoding="utf-8", errors="replace").strip()
        code = int(text) if text.isdecimal() and len(text) < 4 else 1
        elapsed = int(exit_path.stat().st_mtime - started) if started else None
        return JobState(task.job_id, "COMPLETED" if code == 0 else "FAILED", exit_code=code,
                        elapsed_s=elapsed, source="local")
    controller = local_state(run_dir, task.job_id.split("_")[0])
    if controller.state != "RUNNING":
        return JobState(task.job_id, "CANCELLED", source="local")
    if started is None:   # runs made before TASK_STARTED existed: a log means the task began
        began = logs_in(run_dir / task.dir / "logs", task.job_id)
        return JobState(task.job_id, "RUNNING" if began else "PENDING", source="local")
    return JobState(task.job_id, "RUNNING", elapsed_s=int(time.time() - started), source="local")


def _started_at(path: Path) -> float | None:
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------- the back-end
class LocalBackend:
    """Jobs as submitit local controllers on this machine."""

    name = "local"

    def submit(self, job: JobRequest) -> str:
        from .local_executor import ScriptLocalExecutor   # submitit: imported by submit only (status stays light)

        executor = ScriptLocalExecutor(job.run_dir / SUBMITIT_DIR)
        executor.update_parameters(timeout_min=max(1, max(1, len(job.task_dirs)) * job.time_limit_s // 60),
                                   tasks_per_node=1, nodes=1, **local_gpus(job.gpus_per_node))
        if not job.task_dirs:
            handle = executor.submit_script(job.run_dir / job.script, job.run_dir / "logs", job.name, job.run_dir)
        else:
            handle = executor.submit_tasks([(str(job.run_dir / d / "launch_local.sh"), str(job.run_dir / d / "logs"),
                                             job.name) for d in job.task_dirs], job.run_dir)
        return str(handle.job_id)

    def states(self, runs: Sequence[tuple[Path, RunRecord]]) -> dict[tuple[Path, str], JobState]:
        out: dict[tuple[Path, str], JobState] = {}
        for run_dir, record in runs:
            out.update({(run_dir, j.job_id): local_state(run_dir, j.job_id) for j in record.jobs if j.job_id})
            out.update({(run_dir, t.job_id): local_task_state(run_dir, t) for t in record.tasks})
        return out

    def cancel(self, job_id: str, task: int | None, requeue: bool) -> None:
        """Interrupt the run's submitit controller (it stops its tasks); only if it still is that controller."""
        if requeue:
            raise LaunchError("local runs cannot be requeued (fix: submit --from the run directory)")
        try:
            cmdline = Path(f"/proc/{job_id}/cmdline").read_bytes()
        except OSError:
            return
        if b"submitit.local._local" in cmdline:
            os.kill(int(job_id), signal.SIGINT)

    def not_the_runs(self, job_id: str, run_dir: Path) -> str | None:
        """A live local job must be submitit's controller of this run (its folder is the run's ``.submitit``)."""
        try:
            cmdline = Path(f"/proc/{job_id}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if b"submitit.local._local" not in cmdline:
            return "that process is not a submitit controller"
        if not any(os.fsencode(str(d)) in cmdline for d in (run_dir, Path(run_dir).resolve())):
            return "that controller runs another run's jobs"
        return None
