"""``orchestrator logs``: print (or follow) the logs of a run, one job or one array task."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..submit import run_records
from .common import job_selection_options, select_job
from .output import fail


def _select(run_dir: Path, record: run_records.RunRecord, job: str | None) -> list[Path]:
    """One job's logs (listed in its own directory), or every log of the run."""
    return run_records.logs_of_job(run_dir, job, record) if job else run_records.log_files(run_dir, record)


BLOCK = 64 * 1024


def _tail(path: Path, lines: int | None) -> str:
    """The whole log, or its last ``lines`` lines read from the end in blocks (never the whole file for a tail)."""
    try:
        return _read(path, lines)
    except OSError as exc:
        fail(f"logs: {path} cannot be read ({exc.strerror or exc}) (fix: check its permissions)", 1)


def _read(path: Path, lines: int | None) -> str:
    if lines is None:
        return path.read_text(errors="replace")
    with path.open("rb") as handle:
        end = handle.seek(0, 2)
        data, start = b"", end
        while start > 0 and data.count(b"\n") <= lines:
            start = max(0, start - BLOCK)
            handle.seek(start)
            data = handle.read(end - start)
    text = data.decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:]) + "\n" if lines > 0 else ""


@click.command("logs")
@job_selection_options
@click.option("--tail", "lines", type=int, default=None, help="only the last N lines of each log")
@click.option("--follow", is_flag=True, help="keep printing what is appended (Ctrl-C to stop)")
@click.option("--list", "list_only", is_flag=True, help="print the log paths only")
def logs(run: str | None, root: Path | None, job: str | None, task: str | None, lines: int | None, follow: bool,
         list_only: bool) -> None:
    """Logs of RUN (a directory or run id; default the newest run)."""
    run_dir, record, job = select_job("logs", run, root, job, task)
    paths = _select(run_dir, record, job)
    if not paths and not follow:
        fail(f"logs: no logs yet in {run_dir}" + (f" for job {job}" if job else "") + " (fix: wait for the job to start)", 1)
    for path in paths:
        if list_only:
            click.echo(str(path))
            continue
        click.echo(f"===== {path} =====")
        click.echo(_tail(path, lines), nl=False)
    if follow:
        _follow(run_dir, record, job, {p: p.stat().st_size for p in paths})


def _follow(run_dir: Path, record: run_records.RunRecord, job: str | None, offsets: dict[Path, int]) -> None:
    """Print what each log gained since the last look (only the new bytes are read)."""
    try:
        while True:
            for path in _select(run_dir, record, job):
                size, start = path.stat().st_size, offsets.get(path, 0)
                if size > start:
                    with path.open("rb") as handle:
                        handle.seek(start)
                        click.echo(handle.read(size - start).decode(errors="replace"), nl=False)
                offsets[path] = size
            time.sleep(1.0)
    except KeyboardInterrupt:
        return
