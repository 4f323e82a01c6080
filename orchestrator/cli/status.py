"""``orchestrator status``: one table of every job, segment and array task of the runs asked for."""

from __future__ import annotations

from pathlib import Path

import click

from ..submit import run_records
from ..submit.backends import slurm
from ..observe import status
from .common import EXIT_FAILED, fail, run_error


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
@click.option("--all", "show_all", is_flag=True, help="every run under the root (default: the newest)")
@click.option("--follow", is_flag=True, help="refresh until every job ended; exit 1 unless all COMPLETED")
@click.option("--interval", type=float, default=2.0, show_default=True, help="seconds between refreshes")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of the table")
def status_cmd(run: tuple[str, ...], root: Path | None, show_all: bool, follow: bool, interval: float,
               as_json: bool) -> None:
    """State, exit code, elapsed time, nodes, progress and last error of RUN (a directory or run id)."""
    try:
        dirs = run_dirs(run, root or status.default_root(), show_all)
        if follow:
            shown = (lambda rows: None) if as_json else (lambda rows: click.echo(status.text(rows) + "\n"))
            rows = status.follow(dirs, interval_s=interval, on_change=shown)
        else:
            rows = status.collect(dirs)
    except run_records.RunError as exc:
        fail(run_error("status", exc))
    except slurm.SlurmError as exc:
        fail(f"status: {exc}", EXIT_FAILED)
    if as_json:
        click.echo(status.to_json(rows))
    elif not follow:
        click.echo(status.text(rows))
    if follow and not all(r.ok for r in rows):
        raise SystemExit(EXIT_FAILED)
