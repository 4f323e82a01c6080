"""``orchestrator render``: every file a job needs, printed (--dry-run) or written, nothing submitted."""

from __future__ import annotations

from pathlib import Path

import click

from ..submit.checks import all_problems
from ..submit.plan import dry_run_dir
from ..submit.run_script import render_run_sh
from .common import experiment_options, handle_config_errors, load, print_files, render_with_warnings, report_problems
from .output import fail


@click.command("render")
@experiment_options
@click.option("--dry-run", is_flag=True, help="print every rendered file instead of writing")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="write the files into this new directory")
@click.option("--run-sh", type=click.Path(path_type=Path), default=None, help="write a run.sh for this cluster")
@handle_config_errors
def render(profile: str, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
           recipes_dir: str | None, dry_run: bool, out: Path | None, run_sh: Path | None) -> None:
    """Render the sbatch script (or local launcher) and job.json for PROFILE + RECIPE."""
    exp = load(profile, recipe, overrides, profiles_dir, recipes_dir)
    if run_sh is not None:
        _write_new(run_sh, render_run_sh(exp.profile))
        click.echo(f"wrote {run_sh}: fill the variables marked FILL, then: bash {run_sh}")
        return
    report_problems(all_problems(exp, with_megatron=False), for_submit=False)
    rendered = render_with_warnings(exp, str(out.resolve()) if out else dry_run_dir(exp.profile.output_root,
                                                                                     exp.recipe.name))
    if dry_run or out is None:
        print_files(rendered.files.items())
        return
    for path in rendered.write(out):
        click.echo(f"wrote {path}")


def _write_new(path: Path, text: str) -> None:
    if path.exists():
        fail(f"--run-sh: {path} exists and would be overwritten (fix: choose a new file name)")
    if not path.parent.is_dir():
        fail(f"--run-sh: {path.parent} is not an existing directory (fix: create it or choose another path)")
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
        path.chmod(0o755)
    except OSError as exc:
        fail(f"--run-sh: cannot write {path} ({exc.strerror or exc}) (fix: choose a writable directory)")
