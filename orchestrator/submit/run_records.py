"""Run directories and their ``record.json``.

Every submission gets a new directory ``<output_root>/<name>-<YYYYmmdd-HHMMSS>-<4 hex>`` created with
``exist_ok=False`` (never reused, never shared), holding the rendered files, the logs and ``record.json``:
profile, recipe, overrides (and the fully resolved profile/recipe, so ``submit --from`` repeats it exactly), the
resolved command, the environment with secrets redacted, versions, job ids and the rendered scripts.
``record.json`` is written once, after submission, and never overwritten. Array tasks get their own directory
``tasks/<chunk>_<task>/`` with their own ``record.json`` and logs.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..spec.schema import ConfigError, from_dict

RECORD = "record.json"
JOURNAL = "submitted.txt"
"""While a submit runs: ``<backend> <job id>`` per line, appended as each job is accepted, before ``record.json``
exists; removed once the record is written. Left behind only by a submit killed outright (SIGKILL, a lost
machine), and then what ``cancel RUN_DIR`` reads to cancel what that submit started."""
TASK_EXIT = "exit_status"
TASK_STARTED = "started_at"
"""Written into a local sweep task's directory when that task has ended: its exit status."""
FORMAT = 1
_SAFE = re.compile(r"[^A-Za-z0-9_.+-]+")
_JOB_ID = re.compile(r"[0-9]{1,20}")
_TASK_ID = re.compile(r"[0-9]{1,20}_[0-9]{1,9}")


class RunError(RuntimeError):
    """A run directory or record is missing, unreadable or would be overwritten."""


class RecordError(RunError):
    """A ``record.json`` that does not match its schema (damaged or edited); ``str(err)`` names file and field."""

    fix = "restore record.json, or submit the run again"


@dataclass
class JobEntry:
    """One scheduler job of a run (a single job, one segment, or one array chunk)."""

    job_id: str
    role: str                        # "run", "segment 2/3", "array 0-2"
    script: str                      # rendered script, relative to the run dir
    dependency: str | None = None    # e.g. "afterok:12"
    array: str | None = None         # e.g. "0-2%4"
    task_offset: int = 0             # index of this chunk's first variant
    log: str = ""                    # log path pattern as given to the scheduler (absolute)


@dataclass
class TaskEntry:
    """One array task (one sweep variant)."""

    index: int
    variant: str
    dir: str                         # relative to the run dir
    job_id: str                      # "12_3"
    overrides: list[str] = field(default_factory=list)


@dataclass
class RunRecord:
    run_id: str
    kind: Literal["single", "segments", "array", "preflight"]
    backend: Literal["slurm", "local"]
    profile: dict[str, Any]          # {"name": ..., "resolved": {...}}
    recipe: dict[str, Any]
    overrides: list[str]
    command: list[str]
    env: dict[str, str]
    versions: dict[str, str]
    files: list[str]
    jobs: list[JobEntry] = field(default_factory=list)
    tasks: list[TaskEntry] = field(default_factory=list)
    sweep: dict[str, Any] | None = None
    submitted_from: str | None = None
    error: str | None = None
    created: str = ""
    megatron_check: str = ""         # "accepted", "skipped (--no-megatron)" or why it did not run
    provenance: dict[str, Any] = field(default_factory=dict)   # submit.provenance: git commits, image
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def job_ids(self) -> list[str]:
        return [j.job_id for j in self.jobs if j.job_id]


def now_iso() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def fresh_run_dir(root: str | os.PathLike[str], name: str) -> Path:
    """A new run directory's path under ``root`` (``<name>-<YYYYmmdd-HHMMSS>-<hex>``); nothing is created."""
    base = Path(root).expanduser().resolve()
    stem = _SAFE.sub("-", name).strip("-") or "run"
    for _ in range(100):
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = base / f"{stem}-{stamp}-{secrets.token_hex(2)}"
        if not path.exists():
            return path
    raise RunError(f"cannot find a new run directory name under {base}")


def claim(path: Path) -> Path:
    """Create the run directory (and its logs/); refuses one that exists (a run directory is never reused)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    except FileExistsError as exc:
        if not path.parent.is_dir():
            raise RunError(f"cannot create {path}: {path.parent} is not a directory") from exc
        raise RunError(f"run directory {path} appeared meanwhile: submit again") from exc
    except OSError as exc:
        raise RunError(f"cannot create {path} ({exc.strerror or exc})") from exc
    (path / "logs").mkdir()
    return path


def new_run_dir(root: str | os.PathLike[str], name: str) -> Path:
    """Create a fresh, never reused run directory under ``root``."""
    for _ in range(100):
        try:
            return claim(fresh_run_dir(root, name))
        except RunError:
            continue
    raise RunError(f"cannot create a new run directory under {Path(root).expanduser().resolve()}")


def journal(run_dir: Path, backend: str, job_id: str) -> None:
    """Append one accepted job to the run's journal, on disk before the next sbatch."""
    with open(run_dir / JOURNAL, "a", encoding="utf-8") as handle:
        handle.write(f"{backend} {job_id}\n")
        handle.flush()
        os.fsync(handle.fileno())


def journaled(run_dir: Path) -> list[tuple[str, str]]:
    """(backend, job id) of every job a killed submit's journal lists (malformed lines are skipped)."""
    try:
        lines = (run_dir / JOURNAL).read_text(encoding="utf-8", errors="replace").splitlines()[:100_000]
    except OSError:
        return []
    found = [tuple(line.split()) for line in lines]
    return [(b, j) for b, j in (f for f in found if len(f) == 2) if b in ("slurm", "local") and j.isdigit()]


def write_new(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file that must not exist yet."""
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(mode)


def record_text(data: RunRecord | dict[str, Any]) -> str:
    """The text of a ``record.json`` (a run's or an array task's)."""
    return json.dumps(data.to_json() if isinstance(data, RunRecord) else data, indent=2) + "\n"


def write_record(run_dir: Path, record: RunRecord) -> Path:
    """Write ``record.json`` once, whole or not at all (a full disk leaves no half record); refuses to overwrite."""
    record.created = record.created or now_iso()
    path = run_dir / RECORD
    partial = run_dir / f".{RECORD}.partial"
    partial.unlink(missing_ok=True)
    try:
        write_new(partial, record_text(record))
        os.link(partial, path)              # fails when the record exists: never replaced
    except FileExistsError as exc:
        raise RunError(f"{path} exists: records are never overwritten") from exc
    finally:
        partial.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def submit_lock(root: str | os.PathLike[str]) -> Iterator[None]:
    """Submissions into one output root one at a time (``flock`` on the root directory itself, no file is
    written), so two submits at once each see the other's record (a shared checkpoint directory is caught).
    OSError when the root cannot be created."""
    base = Path(root).expanduser().resolve()
    base.mkdir(parents=True, exist_ok=True)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                        # releases the lock


def write_task_record(task_dir: Path, data: dict[str, Any]) -> Path:
    path = task_dir / RECORD
    write_new(path, record_text(data))
    return path


def load_record(run_dir: str | os.PathLike[str]) -> RunRecord:
    path = Path(run_dir) / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunError(f"{run_dir} is not a run directory (no readable {RECORD})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path} is not valid JSON: {exc}") from exc
    return parse_record(data, path)


def parse_record(data: Any, path: Path) -> RunRecord:
    """A record read through its schema (``RunRecord``'s field types): one line naming the file and the field.
    Keys this version does not know are ignored (a newer toolkit may add some)."""
    if not isinstance(data, dict):
        raise RecordError(f"{path}: the top level is not a JSON object")
    known = {k: v for k, v in data.items() if k in RunRecord.__dataclass_fields__}
    try:
        record = from_dict(RunRecord, known, "record")
    except ConfigError as err:
        raise RecordError(f"{path}: {err.setting}: {err.problem}") from None
    ids = [(f"record.jobs[{i}].job_id", j.job_id, _JOB_ID) for i, j in enumerate(record.jobs)]
    ids += [(f"record.tasks[{i}].job_id", t.job_id, _TASK_ID) for i, t in enumerate(record.tasks)]
    for field_name, value, pattern in ids:
        if value and not pattern.fullmatch(value):
            raise RecordError(f"{path}: {field_name}: {value[:40]!r} is not a job id")
    return record


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """Run directories under ``root`` (those with a record), oldest first."""
    base = Path(root)
    if not base.is_dir():
        return []
    runs = [p for p in base.iterdir() if (p / RECORD).is_file()]
    return sorted(runs, key=lambda p: ((p / RECORD).stat().st_mtime, p.name))


def resolve_run(arg: str | None, root: str | os.PathLike[str]) -> Path:
    """A run given as a path or a run id under ``root``; the newest run when ``arg`` is None."""
    if arg:
        for candidate in (Path(arg), Path(root) / arg):
            if (candidate / RECORD).is_file():
                return candidate.resolve()
        raise RunError(f"no run {arg!r} (neither a run directory nor a run id under {root})")
    runs = find_runs(root)
    if not runs:
        raise RunError(f"no runs under {Path(root).resolve()}")
    return runs[-1].resolve()


def logs_in(directory: Path, job_id: str) -> list[Path]:
    """The logs one job wrote in one directory (``<name>_<job_id>.log``), in name order: one listing of that
    directory only, never of another task's."""
    suffix = f"_{job_id}.log"
    try:
        with os.scandir(directory) as entries:
            return sorted(directory / e.name for e in entries if e.name.endswith(suffix))
    except OSError:
        return []


def log_dir(run_dir: Path, job_dirs: dict[str, str], job_id: str) -> Path:
    """Where a job's logs are: an array task's in its own ``tasks/<chunk>_<task>/logs``, any other job's in the
    run's ``logs``. ``job_dirs``: task job id -> task directory (``task_dirs``)."""
    task_dir = job_dirs.get(job_id)
    return run_dir / task_dir / "logs" if task_dir else run_dir / "logs"


def task_dirs(record: RunRecord) -> dict[str, str]:
    """Task job id -> its directory (relative to the run directory), for every array task of a run."""
    return {t.job_id: t.dir for t in record.tasks}


def log_files(run_dir: Path, record: RunRecord | None = None) -> list[Path]:
    """Every log of a run: ``logs/*.log`` and each array task's ``<task dir>/logs/*.log``, the tasks in the
    record's order (each task's own directory is listed once)."""
    record = record or load_record(run_dir)
    found = sorted((run_dir / "logs").glob("*.log"))
    for task in record.tasks:
        found += sorted((run_dir / task.dir / "logs").glob("*.log"))
    return found


def logs_of_job(run_dir: Path, job_id: str, record: RunRecord | None = None) -> list[Path]:
    """Logs written by one job or array task (``..._12.log`` / ``..._12_3.log``), looked up in its own directory."""
    record = record or load_record(run_dir)
    return logs_in(log_dir(run_dir, task_dirs(record), job_id), job_id)


def task_job_id(record: RunRecord, task: str) -> str:
    """The job id of a sweep task given by its index (``3``) or its variant name (``fp8``)."""
    for entry in record.tasks:
        if task in (str(entry.index), entry.variant):
            return entry.job_id
    names = ", ".join(f"{t.index}={t.variant}" for t in record.tasks[:10]) or "none: not a sweep"
    names += f", ... ({len(record.tasks)} in all)" if len(record.tasks) > 10 else ""
    raise RunError(f"no task {task!r} in run {record.run_id} (tasks: {names})")
