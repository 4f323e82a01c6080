"""What the user reads about runs: one row per job / segment / array task with state, exit code, progress, error.

States come from each run's back-end, asked once for all of its runs (``Backend.states``): for Slurm ONE ``sacct``
call, and one ``scontrol`` call when accounting is off or has not settled every job yet (``slurm.job_states``); for
the local back-end submitit's result files and the controller process. Progress comes from the Megatron log
(``logparse``); for a job that failed, the last error line of its log is shown.

Cost: linear in the tasks. A row's logs are looked up in its own directory only (an array task's
``tasks/<chunk>_<task>/logs``, known from the record), and only the last ``TAIL_BYTES`` of its newest log are read.
``summary`` (a sweep larger than a screen) reads the logs of the rows it names only; the other rows need nothing
but the scheduler's one answer.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from . import logparse, tables
from ..node import diagnose, retry
from ..submit import run_records
from ..submit import backends
from ..submit.backends.base import TERMINAL_STATES, JobState

_SKIP_ERROR = ("[orchestrator.", "WARNING:")
TAIL_BYTES = 256 * 1024
"""How much of the end of a log status reads for a row's progress and error (a log may be gigabytes)."""
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
_ATTEMPT = re.compile(diagnose.ATTEMPT_START, re.M)
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


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a file (from its first whole line), decoded."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        start = max(0, size - limit)
        handle.seek(start)
        data = handle.read(limit)
    if start:
        data = data[data.find(b"\n") + 1:]
    return data.decode(errors="replace")


def progress_of(text: str) -> str:
    """``"12/20"``: the last Megatron iteration line of a log's text."""
    summary = logparse.parse_lines(text.splitlines())
    if not summary.records:
        return ""
    last = summary.records[-1]
    return f"{last.iteration}/{last.train_iters}"


@dataclass
class _Seen:
    """How far a log was read, and the progress found there."""

    size: int
    """Bytes read, to the end of the last whole line."""
    progress: str


_SEEN: dict[Path, _Seen] = {}
"""Logs read by this process (``status --follow`` polls): a poll reads only what a log gained since the last."""


def log_progress(log: Path) -> str:
    """``iteration/train_iters`` of a log, reading only the bytes it gained since this process last read it (the
    first time its last ``TAIL_BYTES``); nothing but an open when it did not grow."""
    seen = _SEEN.get(log)
    with open(log, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if seen is not None and size == seen.size:
            return seen.progress
        grown = seen is not None and size > seen.size
        start = max(seen.size if seen is not None and grown else 0, size - TAIL_BYTES)
        handle.seek(start)
        data = handle.read(size - start)
    whole = data[:data.rfind(b"\n") + 1]                      # a line still being written is read next time
    at_line = seen is not None and grown and start == seen.size
    lines = whole if start == 0 or at_line else whole[whole.find(b"\n") + 1:]
    found = progress_of(lines.decode(errors="replace"))
    _SEEN[log] = _Seen(start + len(whole), found or (seen.progress if at_line and seen is not None else ""))
    return _SEEN[log].progress


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
        text = read_tail(logs[-1]) if failed else ""           # a failed job's error needs its last attempt
        row.progress = progress_of(text) if failed else log_progress(logs[-1])
    except OSError as exc:
        row.error = f"cannot read {logs[-1].name}: {exc.strerror or exc}"
        return row
    if failed:
        attempt = last_attempt(text)
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


@dataclass
class Watched:
    """A row as the scheduler alone knows it, and where its job's logs are."""

    row: Row
    """State, exit code, elapsed time and nodes from the back-end."""
    log_dir: Path
    """The one directory its logs are in (an array task's own ``tasks/<chunk>_<task>/logs``)."""
    derived_exit: int | None = None
    """Slurm's derived exit code (the highest of its steps)."""

    def described(self) -> Row:
        """The row with progress and error from the end of its newest log."""
        job_id = self.row.job_id
        logs = run_records.logs_in(self.log_dir, job_id) if job_id != "-" else []
        note = "; ".join(filter(None, (self.row.note, attempts_note(self.log_dir.parent, job_id))))
        return _describe_logs(replace(self.row, note=note), logs, self.derived_exit)


def attempts_note(job_dir: Path, job_id: str) -> str:
    """What the job's retry step recorded (``node/retry.py``), in one line: every attempt that failed, and why the
    last one ended as it did when nothing followed it."""
    recorded = retry.read_attempts(job_dir)  # an array task's directory holds that task's attempts only
    mine = recorded if "_" in job_id else [a for a in recorded if a.job == job_id]
    failed = [f"attempt {a.restart} {a.cause or f'exit {a.status}'} -> {a.action}" for a in mine if a.status != 0]
    if not failed:
        return ""
    last = mine[-1]
    return ", ".join(failed) + (f"; {last.why}" if last.action == "stopped" else "")


def watch(run_dirs: Iterable[Path]) -> list[Watched]:
    """Rows of every run from one scheduler query per back-end; no log is read (only each run's record)."""
    loaded = [(Path(d), run_records.load_record(d)) for d in run_dirs]
    states = _states(loaded)
    found = []
    for run_dir, record in loaded:
        dirs = run_records.task_dirs(record)
        for job_id, part in _wanted(record):
            state = states.get((run_dir, job_id)) or JobState(job_id, "UNKNOWN", source="none")
            row = Row(run=record.run_id, job_id=job_id, part=part, state=state.state, exit_code=state.exit_code,
                      elapsed_s=state.elapsed_s, nodes=state.nodes, source=state.source, note=state.note)
            found.append(Watched(row, run_records.log_dir(run_dir, dirs, job_id), state.derived_exit_code))
        if record.error:
            row = Row(run=record.run_id, job_id="-", part="submit", state="NOT_SUBMITTED", error=record.error)
            found.append(Watched(row, run_dir / "logs"))
    return found


def collect(run_dirs: Iterable[Path]) -> list[Row]:
    """Rows of every run, with one scheduler query per back-end and each row's own log."""
    return [w.described() for w in watch(run_dirs)]


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


NAMED = 5
"""How many failed and how many slowest tasks a summary names."""
_ORDER = ("FAILED", "OUT_OF_MEMORY", "TIMEOUT", "NODE_FAIL", "CANCELLED", "RUNNING", "PENDING", "COMPLETED")


def _by_run(watched: list[Watched]) -> dict[str, list[Watched]]:
    runs: dict[str, list[Watched]] = {}
    for w in watched:
        runs.setdefault(w.row.run, []).append(w)
    return runs


def named(watched: list[Watched], most: int = NAMED) -> tuple[list[Watched], list[Watched]]:
    """The first ``most`` failed rows (in task order) and the ``most`` slowest unfinished ones (longest elapsed)."""
    failed = [w for w in watched if w.row.state in FAILED_STATES or w.row.state == "NOT_SUBMITTED"][:most]
    going = sorted((w for w in watched if not w.row.done and w.row.state != "NOT_SUBMITTED"),
                   key=lambda w: -(w.row.elapsed_s or 0))
    return failed, going[:most]


def summary(watched: list[Watched], most: int = NAMED) -> str:
    """Per run: one line per state with its count, then the failed and the slowest tasks named, as table rows.
    Only the named rows' logs are read."""
    parts = []
    for run, rows in _by_run(watched).items():
        counts = Counter(w.row.state for w in rows)
        order = sorted(counts, key=lambda k: (_ORDER.index(k) if k in _ORDER else len(_ORDER), k))
        lines = [f"{run}: {len(rows)} rows (status --all shows every one)"]
        lines += [tables.table(("STATE", "COUNT"), [[k, str(counts[k])] for k in order], right={1})]
        failed, slowest = named(rows, most)
        for title, group in ((f"failed (first {len(failed)} of {sum(1 for w in rows if w.row.state in FAILED_STATES)})",
                              failed), (f"slowest unfinished ({len(slowest)})", slowest)):
            if group:
                lines += [title + ":", table([w.described() for w in group])]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def view(watched: list[Watched], every_row: bool, screenful: int) -> str:
    """The table of every row, or the summary when there are more rows than ``screenful`` and not ``every_row``."""
    if every_row or len(watched) <= screenful:
        return text([w.described() for w in watched])
    return "\n".join([summary(watched), *notes([w.row for w in watched])])


SETTLE_S = 2.0
"""``follow`` ends once every row has stayed ended this long: a requeued Slurm job can show its last attempt's end
in accounting for a moment before it is pending again (seen when a lost node came back)."""


def follow(run_dirs: list[Path], interval_s: float = 2.0, timeout_s: float | None = None,
           on_change: Callable[[str], None] | None = None,
           shown_as: Callable[[list[Watched]], str] | None = None) -> list[Row]:
    """Poll until every row is finished (or ``timeout_s`` passes); ``on_change`` sees each new text of
    ``shown_as`` (default: the table of every row). Each poll is one scheduler query and what ``shown_as`` reads;
    the rows returned at the end are read once."""
    start, shown, ended_at = time.monotonic(), "", None
    render = shown_as or (lambda ws: text([w.described() for w in ws]))
    while True:
        watched = watch(run_dirs)
        if on_change:
            frame = render(watched)
            if frame != shown:
                on_change(frame)
                shown = frame
        now = time.monotonic()
        finished = all(w.row.done or w.row.state == "NOT_SUBMITTED" for w in watched)
        ended_at = (ended_at or now) if finished else None
        if (ended_at is not None and now - ended_at >= SETTLE_S) or (timeout_s is not None and now - start > timeout_s):
            return [w.described() for w in watched]
        time.sleep(interval_s if ended_at is None else min(interval_s, SETTLE_S))


def default_root() -> Path:
    return Path(os.environ.get("ORCHESTRATOR_RUNS", "runs"))
