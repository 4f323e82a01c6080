"""What a local job runs inside submitit's local controller (pickled by reference, so importable by name): a
rendered ``launch_local.sh``, or a sweep's variants one after another; each leaves its exit status in a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from ..run_records import TASK_EXIT, TASK_STARTED
from .base import SUBMITIT_DIR

TOOLKIT_PARENT = Path(__file__).resolve().parents[3]
"""The directory holding the orchestrator package: the controller imports the toolkit from there."""


def exit_file(run_dir: Path, job_id: str) -> Path:
    """Where a local job's body leaves its exit status as JSON (``{"exit_code": N}``): the toolkit reads job states
    from this file, never from submitit's result pickle (unpickling a run directory's file could run code)."""
    return run_dir / SUBMITIT_DIR / f"{job_id}_exit.json"


def _write_exit(run_dir: str, job_id: str, code: int) -> None:
    exit_file(Path(run_dir), job_id).write_text(json.dumps({"exit_code": code}) + "\n")


def run_local_script(script: str, log_dir: str, name: str, run_dir: str) -> int:
    """The local job's body (runs inside submitit's local controller): bash SCRIPT, logs appended; exit status."""
    job_id = os.environ.get("SUBMITIT_LOCAL_JOB_ID", str(os.getpid()))
    code = _run_logged(script, Path(log_dir) / f"{name}_{job_id}.log")
    _write_exit(run_dir, job_id, code)
    return code


def run_local_sweep(tasks: list[tuple[str, str, str]], run_dir: str) -> int:
    """A local sweep's controller body: ``run_local_tasks``, then its exit status as JSON."""
    code = run_local_tasks(tasks)
    _write_exit(run_dir, os.environ.get("SUBMITIT_LOCAL_JOB_ID", str(os.getpid())), code)
    return code


def run_local_tasks(tasks: list[tuple[str, str, str]]) -> int:
    """A sweep's body on the local back-end: each variant's launch_local.sh in turn. Task i logs to
    ``<name>_<controller>_<i>.log``, leaves its start time (epoch seconds) in TASK_STARTED and its exit status in
    TASK_EXIT."""
    controller = os.environ.get("SUBMITIT_LOCAL_JOB_ID", str(os.getpid()))
    worst = 0
    for index, (script, log_dir, name) in enumerate(tasks):
        (Path(script).parent / TASK_STARTED).write_text(f"{time.time():.3f}\n")
        code = _run_logged(script, Path(log_dir) / f"{name}_{controller}_{index}.log")
        (Path(script).parent / TASK_EXIT).write_text(f"{code}\n")
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
