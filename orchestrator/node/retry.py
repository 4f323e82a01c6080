"""After a job's training step ends, in its batch script on the job's first node: what happened, and what comes next.

``python -m orchestrator.node.retry --spec JOB_JSON --log LOG --status N --retries R --backoff S --started T
--checkpoint-before I`` appends one line to ``<run dir>/attempts.jsonl`` (job id, restart, times, exit status, the
diagnosis and its class, the checkpoint iteration before and after, what was done and why), prints it as one line,
and then either requeues the job (``scontrol requeue``: same job id, so a chain's ``afterok`` still waits for it; the
next attempt resumes from the latest checkpoint) or exits with the step's status:

- a success, or a deterministic failure (``diagnose.Retry``; an unknown cause counts as deterministic): no retry;
- a transient failure: requeued while the budget lasts. Only attempts that failed *without* saving a new checkpoint
  spend it (``--retries`` of them; 0 = never retry), so a week-long run that loses a node every day goes on, and a
  run that fails again and again at the same place stops (no restart storm). Each spent attempt waits longer before
  it starts again (``--backoff`` seconds, doubled per spent attempt, at most 30 minutes); a hardware fault (a GPU
  Xid, an ECC error) excludes its node from the next attempt.

Standard library only: it runs on the batch host, outside any container.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from . import diagnose, entry, jobspec, signatures

Action = Literal["done", "requeued", "stopped"]
ATTEMPTS = "attempts.jsonl"
"""The run directory's file of attempts, one JSON object per line (appended; never rewritten)."""
MAX_BACKOFF_S = 1800


@dataclass(frozen=True)
class Attempt:
    """One attempt of one job: what ran, how it ended, what was done about it."""

    job: str
    """The Slurm job id of the attempt (an array task's own job id)."""
    restart: int
    """SLURM_RESTART_COUNT: 0 for the first attempt, +1 per requeue."""
    nodes: list[str]
    """The attempt's nodes, in rank order."""
    gpus: int
    """GPUs (ranks) of the attempt, for GPU-hours."""
    started: float
    """Unix time the batch script started."""
    ended: float
    """Unix time the training step ended."""
    status: int
    """The step's exit status (128 + N: killed by signal N)."""
    cause: str | None
    """The diagnosis's signature (``cuda_oom``, ``nccl_watchdog_timeout``, ``hang`` ...), None on success."""
    retry: signatures.Retry | None
    """The diagnosis's class, None on success."""
    checkpoint_before: int | None
    """The latest checkpointed iteration when the attempt started (None: none yet)."""
    checkpoint_after: int | None
    """The latest checkpointed iteration when it ended."""
    action: Action
    """What followed: done (success or nothing to retry), requeued, stopped (a failure not retried)."""
    why: str
    """One line: the cause and why it was or was not retried."""
    excluded: list[str]
    """Nodes excluded from the next attempt."""

    @property
    def advanced(self) -> bool:
        return progressed(self.checkpoint_before, self.checkpoint_after)


def progressed(before: int | None, after: int | None) -> bool:
    """The attempt saved a newer checkpoint than the one it started from."""
    return (after or 0) > (before or 0)


def checkpoint_iteration(save_dir: str | None) -> int | None:
    """Megatron's ``latest_checkpointed_iteration.txt`` in ``save_dir`` (None when there is none)."""
    try:
        return int((Path(save_dir or "") / "latest_checkpointed_iteration.txt").read_text().strip()) if save_dir \
            else None
    except (OSError, ValueError):
        return None


def read_attempts(run_dir: Path) -> list[Attempt]:
    """Every attempt recorded in the run directory, oldest first (a line that is not an attempt is skipped)."""
    out = []
    try:
        lines = (run_dir / ATTEMPTS).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            out.append(Attempt(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


def spent(attempts: Sequence[Attempt]) -> int:
    """Failed attempts that saved no new checkpoint: what the retry budget counts."""
    return sum(1 for a in attempts if a.status != 0 and not a.advanced)


def decide(status: int, found: diagnose.Diagnosis | None, earlier: Sequence[Attempt], advanced: bool,
           retries: int) -> tuple[Action, str]:
    """What follows an attempt, and the one line that says why."""
    if status == 0:
        return "done", "the step ended with exit status 0"
    what = f"{found.name}: {found.cause}" if found else f"exit status {status}, no known failure signature"
    if found is None or found.retry == "deterministic":
        return "stopped", f"{what} -- deterministic, not retried (it would fail again)"
    used = spent(earlier) + (0 if advanced else 1)
    if retries == 0:
        return "stopped", f"{what} -- transient, but retries are off (profile.retries=0)"
    if used > retries:
        return "stopped", (f"{what} -- transient, but {used} attempts in a row saved no new checkpoint "
                           f"(profile.retries={retries}): stopped, no restart storm")
    return "requeued", f"{what} -- transient: requeued ({used} of {retries} retries without progress spent)"


def failed_node(found: diagnose.Diagnosis | None, nodes: Sequence[str], tasks: Sequence[int]) -> list[str]:
    """The node a hardware fault names (by its rank; ``tasks``: ranks per node, in node order), for the next
    attempt's --exclude."""
    if found is None or not found.hardware or found.rank is None:
        return []
    first = 0
    for node, count in zip(nodes, tasks):
        if found.rank < first + count:
            return [node]
        first += count
    return []


def _scontrol(*args: str) -> str | None:
    """Run scontrol; its error in one line, None when it succeeded."""
    try:
        done = subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    said = (done.stderr or done.stdout).strip()
    return None if done.returncode == 0 else (said.splitlines()[-1] if said else f"exit {done.returncode}")


def requeue(job: str, exclude: Sequence[str], backoff_s: int) -> list[str]:
    """Requeue the running job; then hold its start ``backoff_s`` and exclude nodes. Problems, one line each."""
    problems = [f"scontrol requeue {job}: {err}"] if (err := _scontrol("requeue", job)) else []
    changes = ([f"StartTime=now+{backoff_s}"] if backoff_s > 0 else []) + \
        ([f"ExcNodeList={','.join(exclude)}"] if exclude else [])
    if changes and not problems and (err := _scontrol("update", f"JobId={job}", *changes)):
        problems.append(f"scontrol update {job} {' '.join(changes)}: {err}")
    return problems


def expand_log(pattern: str, env: Mapping[str, str]) -> str:
    """``#SBATCH --output``'s pattern for this job: %x job name, %j job id, %A array job id, %a array task."""
    for token, name in (("%x", "SLURM_JOB_NAME"), ("%j", "SLURM_JOB_ID"), ("%A", "SLURM_ARRAY_JOB_ID"),
                        ("%a", "SLURM_ARRAY_TASK_ID")):
        pattern = pattern.replace(token, env.get(name, ""))
    return pattern


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m orchestrator.node.retry", description=__doc__.splitlines()[0])
    p.add_argument("--spec", required=True, help="job.json (%%a: the array task)")
    p.add_argument("--log", required=True, help="the job's log, as #SBATCH --output names it")
    p.add_argument("--checkpoint-now", action="store_true", help="print the latest checkpointed iteration (empty: "
                   "none) and exit: what the batch script records before the step")
    p.add_argument("--status", type=int, default=0)
    p.add_argument("--retries", type=int, required=True)
    p.add_argument("--backoff", type=int, default=0, help="seconds before the first retry starts (doubled per "
                   "spent attempt)")
    p.add_argument("--started", type=float, default=0.0)
    p.add_argument("--checkpoint-before", default="")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    a = _args(argv)
    try:
        spec_file = Path(entry.spec_path(a.spec, env))
        spec = jobspec.load(str(spec_file))
    except jobspec.JobSpecError as exc:
        print(f"orchestrator: error: {exc} (nothing recorded, no retry)", file=sys.stderr, flush=True)
        return a.status or 2
    run_dir = spec_file.parent
    save_dir = entry.flag_value(spec.command, "--save")
    if a.checkpoint_now:
        print(checkpoint_iteration(save_dir) or "")
        return 0
    log = expand_log(a.log, env)
    found = diagnose.diagnose_file(log) if a.status != 0 and Path(log).is_file() else None
    nodes = entry.expand_hostlist(env.get("SLURM_JOB_NODELIST", ""))
    tasks = entry.parse_tasks_per_node(env.get("SLURM_TASKS_PER_NODE", "1"))
    earlier = [x for x in read_attempts(run_dir) if x.job == env.get("SLURM_JOB_ID", "")]
    before = int(a.checkpoint_before) if a.checkpoint_before.strip().isdigit() else None
    after = checkpoint_iteration(save_dir)
    action, why = decide(a.status, found, earlier, progressed(before, after), a.retries)
    exclude = failed_node(found, nodes, tasks) if action == "requeued" else []
    attempt = Attempt(env.get("SLURM_JOB_ID", ""), int(env.get("SLURM_RESTART_COUNT", "0") or 0), nodes,
                      sum(tasks), a.started, time.time(), a.status,
                      found.name if found else None, found.retry if found else None, before, after, action, why,
                      exclude)
    with open(run_dir / ATTEMPTS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(attempt)) + "\n")
    if a.status != 0:   # a success says nothing in the log (attempts.jsonl has it): its last lines stay Megatron's
        print(f"orchestrator: attempt {attempt.restart} of job {attempt.job} {action}: {why}"
              + (f"; excluding {','.join(exclude)}" if exclude else ""), flush=True)
    if action != "requeued":
        return int(a.status)
    backoff = min(MAX_BACKOFF_S, a.backoff * 2 ** max(0, spent([*earlier, attempt]) - 1))
    problems = requeue(attempt.job, exclude, backoff)
    for problem in problems:
        print(f"orchestrator: {problem}", file=sys.stderr, flush=True)
    return int(a.status) if problems else 0


if __name__ == "__main__":
    sys.exit(main())
