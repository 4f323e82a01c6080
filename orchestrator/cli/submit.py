"""``orchestrator submit``: validate, render and submit a run, a chain of segments, or a sweep as a job array;
with ``--dry-run`` the same checks and plan, printed: every file it would write and every job it would submit."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import click

from ..spec.sweep import expand, load_sweep
from ..submit import again, fit, job_ids, launch, plan, plan_records
from ..submit.rules import rule_memory
from ..submit.rules import strict_memory as memory_as_error
from ..submit.verdict import verdict
from .common import (
    follow_and_exit, handle_config_errors, load, print_files, print_submission, report_problems,
    submission_errors)
from .output import SCREENFUL, fail


def print_dry_run(dry: plan_records.DryRun, show_files: bool | None, out: Path | None) -> None:
    """The plan as a real submit would carry it out: the placeholders, its files (every one when asked, or when
    they fit a screen; else one summary line), one line per job. ``out``: every file is written there instead."""
    p = dry.plan
    done = "nothing written or submitted" if out is None else f"nothing submitted, the files written under {out} only"
    click.echo(f"dry run: {done}; the run directory is shown as {p.run_dir} (a real submit "
               f"creates {p.request.name}-<YYYYmmdd-HHMMSS>-<hex>) and job n's scheduler id as {job_ids.JOB_ID.format('<n>')}")
    for warning in [*p.warnings, *dry.limit_warnings]:
        click.echo(f"warning: {warning}", err=True)
    if out is not None:
        plan_records.write_out(dry.files, out)
        click.echo(f"wrote {plan_records.file_summary(dry.files)} under {out}")
    elif show_files or (show_files is None and len(dry.files) <= SCREENFUL):
        print_files((f.path, f.text) for f in dry.files)
    else:
        click.echo(f"would write {plan_records.file_summary(dry.files)} (--show-files prints every one, "
                   "--out DIR writes them there)")
    if dry.max_array_size:
        click.echo(f"{dry.max_array_size}: {len(p.jobs)} array job(s)")
    for number, job in enumerate(p.jobs, 1):
        click.echo(f"would submit {job_ids.job_id(number)}: {job_line(p, job)}")
        if job.node_command:
            click.echo(f"    each rank runs: {shlex.join(job.node_command)}")
    click.echo("a real submit also creates logs/ (and tasks/*/logs/) and .submitit/ (submitit's copy of what it "
               "submitted, and its state)" + (f", and {', '.join(path for path, _ in p.request.provenance_files)} "
                                               "(the uncommitted changes of the code that runs)"
                                               if p.request.provenance_files else ""))


def job_line(p: plan.Plan, job: plan.PlannedJob) -> str:
    """What submitting one planned job runs, with its array range and dependency (``#SBATCH`` lines)."""
    tasks = f": {names([t.variant.name for t in job.tasks])}" if job.tasks else ""
    ranks = f"{job.ntasks} ranks{' each' if job.tasks else ''}"
    if not p.request.slurm:
        return f"local job (submitit) running {job.script}  [{job.role}{tasks}; {ranks} on this machine]"
    dependency = job.dependency.text(job_ids.placeholders(len(p.jobs))) if job.dependency else None
    directives = "".join(f"; --{key}={value}" for key, value in (("array", job.array),
                                                                 ("dependency", dependency)) if value)
    return f"sbatch {job.script}  [{job.role}{tasks}; {ranks}{directives}]"


def memory_guard(request: plan.Request, strict: bool) -> None:
    """The estimator's memory warning for each run of the request; with ``strict`` an error (exit 2)."""
    exps = [exp for _v, exp in expand(request.exp, request.sweep)] if request.sweep else [request.exp]
    found = [p for exp in exps for p in rule_memory(exp)]
    if found:
        report_problems(memory_as_error(found) if strict else found)


def names(found: list[str], most: int = 10) -> str:
    """Variant names, comma-separated; a long list as its first and last few and the count."""
    if len(found) <= most:
        return ", ".join(found)
    return f"{', '.join(found[:3])}, ..., {', '.join(found[-2:])} ({len(found)} variants)"


@click.command("submit")
@click.option("--profile", "-p", default=None, help="cluster profile name or YAML path")
@click.option("--recipe", "-r", default=None, help="recipe name or YAML path (default: the sweep's, else the profile's default_recipe)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a recipe setting (parallel.pp=4) or a profile one (profile.nodes=2)")
@click.option("--profiles-dir", envvar="ORCHESTRATOR_PROFILES_DIR", default=None, help="directory of your profiles")
@click.option("--recipes-dir", envvar="ORCHESTRATOR_RECIPES_DIR", default=None, help="directory of your recipes")
@click.option("--sweep", "sweep_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="sweep file: one job-array task per variant")
@click.option("--segments", type=click.IntRange(min=1), default=1, show_default=True,
              help="chain of jobs, each resuming from the previous one's checkpoint")
@click.option("--segment-dependency", type=click.Choice(["afterok", "afterany"]), default="afterok",
              show_default=True, help="when the next segment may start")
@click.option("--from", "from_run", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="submit again exactly what this run directory's record.json describes")
@click.option("--follow", is_flag=True, help="wait and show the status table until every job ended")
@click.option("--dry-run", is_flag=True,
              help="run every check, then print the plan: its files (one summary line when there are more than a "
                   "screenful) and every job it would submit; create and submit nothing")
@click.option("--show-files/--no-show-files", default=None,
              help="with --dry-run: print every file in full (default: only when they fit a screen)")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="with --dry-run: write every file it would write under this new (or empty) directory")
@click.option("--strict-memory", is_flag=True, help="refuse when the predicted peak exceeds the GPU's memory")
@click.option("--no-megatron", is_flag=True,
              help="skip Megatron's own argument check (the run record says it was skipped)")
@click.option("--profile-steps", metavar="A-B", default=None,
              help="trace iterations A+1..B with the torch profiler (= --set profiling.steps=A-B)")
@click.option("--profile-ranks", metavar="R,R", default=None, help="ranks that trace (= --set profiling.ranks=[R,R])")
@click.option("--memory-snapshot", is_flag=True, help="record the allocator's history (= profiling.memory_snapshot)")
@handle_config_errors
def submit(profile: str | None, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
           recipes_dir: str | None, sweep_file: Path | None, segments: int, segment_dependency: str,
           from_run: Path | None, follow: bool, dry_run: bool, show_files: bool | None, out_dir: Path | None,
           strict_memory: bool, no_megatron: bool, profile_steps: str | None, profile_ranks: str | None,
           memory_snapshot: bool) -> None:
    """Submit PROFILE + RECIPE (+ overrides): nothing reaches the scheduler unless every check passes."""
    overrides += profiling_overrides(profile_steps, profile_ranks, memory_snapshot)
    if dry_run and follow:
        fail("--follow: a dry run submits nothing to follow (fix: drop --follow or --dry-run)")
    if not dry_run and (show_files is not None or out_dir is not None):
        fail("--show-files/--out: only a dry run prints or writes its files (fix: add --dry-run)")
    if out_dir is not None and out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        fail(f"--out: {out_dir} exists and is not an empty directory (fix: name a new directory)")
    with submission_errors():
        request = _request(profile, recipe, overrides, profiles_dir, recipes_dir, sweep_file, segments,
                           segment_dependency, from_run)
        request = dataclasses.replace(request, megatron_check=not no_megatron)
        if dry_run:
            found = verdict(request)   # the same as validate's
            report_problems(memory_as_error(list(found.problems)) if strict_memory else list(found.problems))
            if found.dry is not None:
                print_dry_run(found.dry, show_files, out_dir)
            return
        memory_guard(request, strict_memory)
        sub = launch.submit(request)
    print_submission(sub)
    if follow:
        follow_and_exit(sub.run_dir)


def profiling_overrides(steps: str | None, ranks: str | None, memory_snapshot: bool) -> tuple[str, ...]:
    """The profiling flags as the settings they stand for (the record keeps them as overrides)."""
    found = [f"profiling.steps={steps}"] if steps else []
    found += [f"profiling.ranks=[{ranks}]"] if ranks is not None else []
    return (*found, *(["profiling.memory_snapshot=true"] if memory_snapshot else []))


def _request(profile: str | None, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
             recipes_dir: str | None, sweep_file: Path | None, segments: int, segment_dependency: str,
             from_run: Path | None) -> plan.Request:
    """What the options ask to submit: a recorded run again, a sweep, or a run (of ``segments`` jobs)."""
    if from_run is not None:
        if profile or recipe or overrides or sweep_file:
            fail("--from: repeats a recorded run as it was (fix: drop --profile/--recipe/--set/--sweep)")
        return again.request_from_record(from_run)
    if not profile:
        fail("--profile: missing (fix: pass --profile NAME; `orchestrator profiles` lists them)")
    sweep = load_sweep(sweep_file) if sweep_file else None
    exp = load(profile, recipe or (sweep.recipe if sweep else None), overrides, profiles_dir, recipes_dir)
    if sweep is not None:
        return plan.Request(exp, overrides, sweep=sweep)
    if (pick := fit.for_machine(exp, recipe is not None, overrides)) is not None:
        click.echo(f"this machine: {pick.line}")
        overrides = (*pick.overrides, *overrides)
        exp = load(profile, recipe, overrides, profiles_dir, recipes_dir)
    return plan.Request(exp, overrides, segments=segments, segment_dependency=segment_dependency)
