"""``orchestrator status``: one table of every job, segment and array task of the runs asked for."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..submit import run_records
from ..submit.backends import slurm
from ..observe import status
from .output import EXIT_FAILED, SCREENFUL, fail, run_error


def run_dirs(selected: tuple[str, ...], root: Path, show_all: bool) -> list[Path]:
    if selected:
        return [run_records.resolve_run(s, root) for s in selected]
    if show_all:
        found = run_records.find_runs(root)
        if not found:
            raise run_records.RunError(f"no runs under {root.resolve()}")
        return found
    return [run_records.resolve_run(None, root)]


@click.command("status")
@click.argument("run", nargs=-1)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where run directories are (default ./runs or $ORCHESTRATOR_RUNS)")
@click.option("--all", "show_all", is_flag=True,
              help="everything: every run under the root (default: the newest, or the RUNs named) and every row of "
                   "each (default: one line per state when a run has more rows than a screen)")
@click.option("--follow", is_flag=True, help="refresh until every job ended; exit 1 unless all COMPLETED")
@click.option("--interval", type=float, default=2.0, show_default=True, help="seconds between refreshes")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of the table")
def status_cmd(run: tuple[str, ...], root: Path | None, show_all: bool, follow: bool, interval: float,
               as_json: bool) -> None:
    """State, exit code, elapsed time, nodes, progress and last error of RUN (a directory or run id); a sweep
    larger than a screen as one line per state with the failed and slowest tasks named (--all: every row)."""
    if not math.isfinite(interval) or interval < 0.1:
        fail(f"--interval: {interval} is not a refresh period (fix: seconds, 0.1 or more, e.g. 2)")
    def shown(text: str) -> None:
        click.echo(text + "\n")

    def as_text(watched: list[status.Watched]) -> str:
        return status.view(watched, show_all, SCREENFUL)

    try:
        dirs = run_dirs(run, root or status.default_root(), show_all)
        if follow:
            rows = status.follow(dirs, interval_s=interval, on_change=None if as_json else shown, shown_as=as_text)
            ok = all(r.ok for r in rows)
            text = status.to_json(rows) if as_json else None
        elif as_json:
            text = status.to_json(status.collect(dirs))
        else:
            text = as_text(status.watch(dirs))
    except run_records.RunError as exc:
        fail(run_error("status", exc))
    except slurm.SlurmError as exc:
        fail(f"status: {exc}", EXIT_FAILED)
    if text is not None:
        click.echo(text)
    if follow and not ok:
        raise SystemExit(EXIT_FAILED)
