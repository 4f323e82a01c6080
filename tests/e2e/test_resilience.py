"""End-to-end: runs that carry themselves, on the real local Slurm (the CPU model takes faults from CPU_GPT_FAULT).

The batch script the toolkit renders runs the training step, a watchdog beside it and a retry step after it
(``node/watchdog.py``, ``node/retry.py``): a transient failure is requeued and resumes from its checkpoint, a
deterministic one is not, a hang is stopped with its stacks saved, and Slurm's pre-limit signal (USR1 to the batch
shell, as ``--signal=B:USR1@margin`` sends it) saves at the iteration it came in. Nothing here is timed: the hang's
bound is the run's own median iteration time, which the watchdog records with what it saw.
"""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Workspace, wait_until
from .test_faults import _ckpt, _resumed_exactly, _saved
from .test_launch import BASE, _wait_for_iteration, env_set, iterations, log_text, only_run, record, status_rows

FAST_RETRY = ["--set", "profile.retries=2", "--set", "profile.retry_backoff_s=0"]


def attempts(run_dir: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (run_dir / "attempts.jsonl").read_text().splitlines()]


def _split_at_restart(text: str, job_id: str) -> tuple[str, str]:
    """The log of the first attempt, and of the second (the batch script's first line names the restart)."""
    cut = text.index(f"orchestrator: job {job_id} on ")
    second = text.index("(restart 1)", cut)
    return text[:second], text[second:]


def test_a_transient_fault_is_requeued_and_the_run_ends_at_its_last_iteration(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "training.train_iters=30", "--set", "training.save_interval=5",
                  *FAST_RETRY, *_ckpt(ws), *env_set("CPU_GPT_FAULT", "nccl-timeout@12"), "--follow", timeout=300)
    run_dir = only_run(ws)
    job_id = record(run_dir)["jobs"][0]["job_id"]
    assert proc.returncode == 0, proc.stdout + proc.stderr + log_text(run_dir)[-3000:]
    first, second = attempts(run_dir)
    assert (first["status"], first["cause"], first["retry"], first["action"]) == \
        (134, "nccl_watchdog_timeout", "transient", "requeued"), first
    assert (first["checkpoint_before"], first["checkpoint_after"]) == (None, 10)
    assert (second["restart"], second["status"], second["action"], second["checkpoint_after"]) == (1, 0, "done", 30)
    before, after = _split_at_restart(log_text(run_dir), job_id)
    assert _resumed_exactly(before, after, 30) == 10         # the loss curve goes on where the checkpoint was
    [row] = status_rows(ws, run_dir)
    assert (row["state"], row["progress"]) == ("COMPLETED", "30/30")
    assert "attempt 0 nccl_watchdog_timeout -> requeued" in row["note"], row
    report = ws.cli("report", str(run_dir), "--json")
    [reported] = json.loads(report.stdout)
    assert (reported["state"], reported["diagnosis"]) == ("completed", None)   # the retried failure is history
    g = reported["goodput"]
    assert (g["attempts"], g["restarts"]) == (2, 1) and 0 < g["productive_gpu_h"] < g["allocated_gpu_h"]
    assert g["lost_to_failures_gpu_h"] > 0 and g["goodput"] == round(g["productive_gpu_h"] / g["allocated_gpu_h"], 4)


def test_out_of_memory_is_not_retried_and_status_says_why(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "training.train_iters=20", "--set", "training.save_interval=5",
                  *FAST_RETRY, *env_set("CPU_GPT_FAULT", "oom@8"), "--follow", timeout=300)
    run_dir = only_run(ws)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [only] = attempts(run_dir)
    assert (only["cause"], only["retry"], only["action"]) == ("cuda_oom", "deterministic", "stopped"), only
    [row] = status_rows(ws, run_dir)
    assert row["state"] == "FAILED" and "deterministic, not retried" in row["note"], row
    assert "(restart 1)" not in log_text(run_dir)


def test_a_hang_is_stopped_with_its_stacks_and_the_retry_finishes(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "training.train_iters=24", "--set", "training.save_interval=4",
                  *FAST_RETRY, "--set", "profile.hang_factor=5", "--set", "profile.hang_floor_s=3",
                  *env_set("CPU_GPT_FAULT", "hang@10"), *env_set("CPU_GPT_SLEEP_MS", "100"), "--follow", timeout=400)
    run_dir = only_run(ws)
    text = log_text(run_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr + text[-3000:]
    hang = json.loads((run_dir / "hang.json").read_text())
    assert hang["iteration"] == 9 and hang["median_s"] is not None
    assert hang["allowed_s"] == max(3.0, round(5 * hang["median_s"], 2))
    assert hang["allowed_s"] <= hang["waited_s"] <= hang["allowed_s"] + 3.0  # within the bound, polled each second
    stacks = (run_dir / "stacks" / "rank-0.txt").read_text()
    assert "most recent call first" in stacks and "in fire" in stacks, stacks   # where it hung: the fault's loop
    first = attempts(run_dir)[0]
    assert (first["cause"], first["retry"], first["action"], first["checkpoint_after"]) == \
        ("hang", "transient", "requeued", 8)
    assert "orchestrator: HUNG at iteration 9 on n1" in text
    assert iterations(text)[-1][0] == 24 and status_rows(ws, run_dir)[0]["state"] == "COMPLETED"


def test_the_pre_limit_signal_saves_at_the_iteration_it_came_in(workspace: Workspace) -> None:
    ws = workspace
    proc = ws.cli("submit", *BASE, "--set", "training.train_iters=100000", "--set", "training.save_interval=1000",
                  *env_set("CPU_GPT_SLEEP_MS", "50"))
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run(ws)
    sbatch = (run_dir / "sbatch.sh").read_text()
    assert "#SBATCH --signal=B:USR1@" in sbatch and "--exit-signal-handler" in (run_dir / "job.json").read_text()
    job_id = record(run_dir)["jobs"][0]["job_id"]
    _wait_for_iteration(run_dir, 12)
    ws.cluster.run("scancel", "--batch", "--signal=USR1", job_id)   # what Slurm sends at the margin
    follow = ws.cli("status", str(run_dir), "--follow", "--interval", "0.5", timeout=120)
    text = log_text(run_dir)
    assert follow.returncode == 0, follow.stdout + text[-3000:]
    last = iterations(text)[-1][0]
    assert _saved(text) == [last] and "exiting program after receiving SIGTERM." in text   # no iteration lost
    assert wait_until(lambda: attempts(run_dir), 10, "the attempt")[0]["checkpoint_after"] == last
