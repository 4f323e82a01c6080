"""``orchestrator report``: steady-state throughput, memory, loss, state and diagnosis of runs and variants."""

from __future__ import annotations

from pathlib import Path

import click

from ..observe import report as report_mod
from .output import fail


@click.command("report")
@click.argument("paths", nargs=-1, required=True, metavar="RUN_DIR_OR_LOG...")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of the table")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also draw TFLOP/s/GPU per variant and the loss curves into this PNG")
@click.option("--first-iter", type=int, default=3, show_default=True,
              help="first iteration counted in the steady state (earlier ones are warm-up)")
def report(paths: tuple[str, ...], as_json: bool, plot_path: Path | None, first_iter: int) -> None:
    """One row per run or sweep variant: median TFLOP/s/GPU, tokens/s/GPU and iteration time over iterations
    >= 3, peak memory, final lm loss, state and diagnosis. RUN_DIR_OR_LOG: Megatron log files or run directories
    (their *.log, *.out and logs/**; a sweep's run directory gives one row per variant)."""
    for path in paths:
        if not Path(path).exists():
            fail(f"report: {path}: no such file or directory (fix: pass a Megatron log or a run directory)")
    if first_iter < 1:
        fail(f"report: --first-iter: {first_iter} is below 1 (fix: pass 1 or more; 3 skips the warm-up)")
    rows = report_mod.build_report(paths, first_iter)
    click.echo(report_mod.to_json(rows) if as_json else report_mod.table(rows))
    if plot_path is not None:
        try:
            report_mod.plot(rows, plot_path)
        except ImportError:
            fail("report: --plot: matplotlib is not installed (fix: pip install matplotlib)", 1)
        except OSError as exc:
            fail(f"report: --plot: cannot write {plot_path}: {exc.strerror} (fix: pick a writable path)", 1)
