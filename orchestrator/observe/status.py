"""What the user reads about runs: one row per job / segment / array task with state, exit code, progress, error.

States come from each run's back-end, asked once for all of its runs (``Backend.states``): for Slurm ONE ``sacct``
call (``scontrol`` when accounting is off); for the local back-end submitit's result files and the controller
process. Progress comes from the Megatron log (``logparse``); for a job that failed, the last error line of its log
is shown.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import logparse, tables
from ..submit import run_records
from ..submit import backends
from ..submit.backends.base import TERMINAL_STATES, JobState

_SKIP_ERROR = ("[orchestrator.", "WARNING:")
FAILED_STATES = frozenset(TERMINAL_STATES - {"COMPLETED"})


@dataclass
class Row:
    run: str
    job_id: str
    part: str                  # "run", "segment 1/2", variant name, "preflight"
    state: str
    exit_code: int | None = None
    elapsed_s: int | None = None
    nodes: str = ""
    progress: str = ""         # "12/20" from the Megatron log
    error: str = ""            # the error that ended a failed job (first exception of its last attempt)
    log: str = ""
    source: str = ""           # where the state came from: sacct, scontrol (accounting did not answer), local
    note: str = ""             # the scheduler's word besides the state: a node lost under the job and why, or
    #                            that accounting did not answer and the state came from slurmctld

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"


# ------------------------------------------------------------------------------------------------- logs
_PREFIX = re.compile(r"^\s*(?:\d+: |\[rank\d+\]: ?|\[default\d+\]: ?)")    # srun --label, torch, torchrun
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b.*")
_OTHER_ERROR = re.compile(r".*\berror:.*", re.IGNORECASE)
_ATTEMPT = re.compile(r"^orchestrator: job \S+ on .*\(restart \d+\)\s*$", re.M)
_SCHEDULER_TOOLS = ("srun:", "slurmstepd:", "sbatch:")
_TASK_EXIT = re.compile(r"srun: error: \S+: tasks? [\d,-]+: Exited with exit code (\d+)")


def last_attempt(text: str) -> str:
    """The part of a log written by the newest start of the job (requeued jobs append to the same log)."""
    starts = [m.start() for m in _ATTEMPT.finditer(text)]
    return text[starts[-1]:] if starts else text


def root_error(text: str) -> str:
    """The error that ended a run: its first Python exception line (later ones are usually other ranks noticing
    the failure: closed connections, watchdogs), else the first ``error:`` line a rank printed (e.g. the training
    entry's one-line refusal), else the last one of the scheduler's tools (srun, slurmstepd)."""
    program, scheduler = "", ""
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw).strip()
        if not line or line.startswith(_SKIP_ERROR):
            continue
        if _EXCEPTION.match(line):
            return line[:300]
        if _OTHER_ERROR.match(line):
            if line.startswith(_SCHEDULER_TOOLS):
                scheduler = line
            elif not program:
                program = line
    return (program or scheduler)[:300]


def first_task_exit(text: str) -> int | None:
    """Exit code of the first rank srun saw fail (``srun: error: n1: task 1: Exited with exit code 1``)."""
    match = _TASK_EXIT.search(text)
    return int(match.group(1)) if match else None


def progress(log: Path) -> str:
    """``iteration/train_iters`` of the log's last record ('' before the first); OSError when it cannot be read."""
    summary = logparse.parse_file(log)
    if not summary.records:
        return ""
    last = summary.records[-1]
    return f"{last.iteration}/{last.train_iters}"


def _describe_logs(row: Row, logs: list[Path], derived_exit: int | None) -> Row:
    """Progress from the log; for a failed job its root error, and as exit code the first failing rank's
    (a job's own code is often that of a rank srun killed afterwards), else Slurm's derived exit code."""
    failed = row.state in FAILED_STATES or row.exit_code not in (None, 0)
    if failed and derived_exit:
        row.exit_code = derived_exit
    if not logs:
        return row
    row.log = str(logs[-1])
    try:
        row.progress = progress(logs[-1])
    except OSError as exc:
        row.error = f"cannot read {logs[-1].name}: {exc.strerror or exc}"
        return row
    if failed:
        try:
            attempt = last_attempt(logs[-1].read_text(errors="replace"))
        except OSError:
            return row
        row.error = root_error(attempt)
        code = first_task_exit(attempt)
        if code is not None and row.state != "CANCELLED":
            row.exit_code = code
    return row


# ------------------------------------------------------------------------------------------------- rows
def _wanted(record: run_records.RunRecord) -> list[tuple[str, str]]:
    """(job id, part label) of every row of a run."""
    if record.kind == "array":
        return [(t.job_id, t.variant) for t in record.tasks]
    if record.kind == "preflight":
        return [(j.job_id, "preflight") for j in record.jobs]
    return [(j.job_id, j.role) for j in record.jobs]


def _states(loaded: list[tuple[Path, run_records.RunRecord]]) -> dict[tuple[Path, str], JobState]:
    """Every listed job's state, asking each back-end once for all of its runs (one sacct call for Slurm)."""
    states: dict[tuple[Path, str], JobState] = {}
    for name in sorted({record.backend for _d, record in loaded}):
        states.update(backends.backend(name).states([(d, r) for d, r in loaded if r.backend == name]))
    return states


def collect(run_dirs: Iterable[Path]) -> list[Row]:
    """Rows of every run, with one scheduler query per back-end."""
    loaded = [(Path(d), run_records.load_record(d)) for d in run_dirs]
    states = _states(loaded)
    rows = []
    for run_dir, record in loaded:
        for job_id, part in _wanted(record):
            state = states.get((run_dir, job_id)) or JobState(job_id, "UNKNOWN", source="none")
            row = Row(run=record.run_id, job_id=job_id, part=part, state=state.state, exit_code=state.exit_code,
                      elapsed_s=state.elapsed_s, nodes=state.nodes, source=state.source, note=state.note)
            rows.append(_describe_logs(row, run_records.logs_of_job(run_dir, job_id), state.derived_exit_code))
        if record.error:
            rows.append(Row(run=record.run_id, job_id="-", part="submit", state="NOT_SUBMITTED", error=record.error))
    return rows


# ------------------------------------------------------------------------------------------------- output
COLUMNS = ("RUN", "JOB", "PART", "STATE", "EXIT", "ELAPSED", "NODES", "PROGRESS", "ERROR")


def _elapsed(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def table(rows: list[Row]) -> str:
    """One line per row under the column headers; the error column is not padded."""
    cells = [[r.run, r.job_id, r.part, r.state, "-" if r.exit_code is None else str(r.exit_code),
              _elapsed(r.elapsed_s), r.nodes or "-", r.progress or "-", r.error or ""] for r in rows]
    return tables.table(COLUMNS, cells, free_last=True)


def notes(rows: list[Row]) -> list[str]:
    """One ``note:`` line per distinct scheduler note (printed under the table), naming the jobs it is about."""
    jobs: dict[str, list[str]] = {}
    for row in rows:
        if row.note:
            jobs.setdefault(row.note, []).append(row.job_id)
    return [f"note: job {', '.join(ids)}: {note}" for note, ids in jobs.items()]


def text(rows: list[Row]) -> str:
    """The table, then one ``note:`` line per scheduler note (a node lost, accounting not answering)."""
    return "\n".join([table(rows), *notes(rows)])


def to_json(rows: list[Row]) -> str:
    """The rows as a JSON list."""
    return tables.to_json(rows)


def follow(run_dirs: list[Path], interval_s: float = 2.0, timeout_s: float | None = None,
           on_change: Callable[[list[Row]], None] | None = None) -> list[Row]:
    """Poll until every row is finished (or ``timeout_s`` passes); ``on_change`` sees each new table."""
    start, shown = time.monotonic(), ""
    while True:
        rows = collect(run_dirs)
        text = table(rows)
        if on_change and text != shown:
            on_change(rows)
            shown = text
        finished = all(r.done or r.state == "NOT_SUBMITTED" for r in rows)
        if finished or (timeout_s is not None and time.monotonic() - start > timeout_s):
            return rows
        time.sleep(interval_s)


def default_root() -> Path:
    return Path(os.environ.get("ORCHESTRATOR_RUNS", "runs"))
