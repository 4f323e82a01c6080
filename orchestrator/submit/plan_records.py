"""What a plan leaves behind: ``record.json`` of the run and of each array task, built from the plan and the ids
the scheduler gave (real ones after submission, ``JOBID_<n>`` in a dry run), and the dry run that prints them."""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from .. import __version__
from ..spec import secret_names
from ..spec.schema import to_dict
from . import checks, run_records
from .backends import slurm, slurm_limits
from .job_ids import job_id, placeholders
from .plan import Plan, PlannedFile, PlannedTask, Request, dry_run_dir, make_plan, prepare

CREATED_PLACEHOLDER = "<time of submission>"


def fill(pattern: str, ids: list[str]) -> str:
    """A local job's log pattern with its ``JOBID_<n>`` replaced by the submitted id."""
    for number in range(len(ids), 0, -1):          # JOBID_10 before JOBID_1
        pattern = pattern.replace(job_id(number), ids[number - 1])
    return pattern


def submission_versions(target: Any) -> dict[str, str]:
    """What submitted the run: the toolkit, Python, submitit, the Megatron target and the Slurm client."""
    out = {"orchestrator": __version__, "python": platform.python_version(), "submitit": submitit.__version__,
           "megatron_target": f"{target.version} ({target.source})"}
    try:
        out["slurm"] = subprocess.run(["sbatch", "--version"], capture_output=True, text=True,
                                      timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        out["slurm"] = "not installed"
    return out


def top_level(paths: list[str]) -> list[str]:
    """The files a record lists: those directly in the run directory (array tasks are listed as tasks)."""
    return [p for p in paths if "/" not in p]


def run_record(plan: Plan, ids: list[str], files: list[str], created: str = "") -> run_records.RunRecord:
    """``record.json`` of a plan whose first ``len(ids)`` jobs were submitted with these ids."""
    req, exp, spec = plan.request, plan.request.exp, plan.first.spec
    record = run_records.RunRecord(
        run_id=Path(plan.run_dir).name, kind=req.kind, backend=exp.profile.scheduler,
        profile={"name": exp.profile.name, "resolved": to_dict(exp.profile)},
        recipe={"name": exp.recipe.name, "resolved": to_dict(exp.recipe)},
        overrides=list(req.overrides), command=[] if req.sweep else list(spec.command),
        env=secret_names.redact(spec.env), versions=submission_versions(plan.first.args.target),
        files=files, sweep=to_dict(req.sweep) if req.sweep else None, submitted_from=req.submitted_from,
        created=created, megatron_check=checks.outcome(req.megatron_check, req.notes), provenance=req.provenance)
    for job, job_id_ in zip(plan.jobs, ids):
        record.jobs.append(run_records.JobEntry(job_id=job_id_, role=job.role, script=job.script,
                                         dependency=job.dependency.text(ids) if job.dependency else None,
                                         array=job.array, task_offset=job.task_offset, log=fill(job.log, ids)))
        record.tasks += [run_records.TaskEntry(index=t.index, variant=t.variant.name, dir=t.dir,
                                        job_id=f"{job_id_}_{t.task}", overrides=list(t.variant.set))
                         for t in job.tasks]
    return record


def task_record(plan: Plan, task: PlannedTask, array_job: str, created: str) -> PlannedFile:
    """An array task's ``tasks/<chunk>_<task>/record.json``."""
    data = {"run_id": Path(plan.run_dir).name, "index": task.index, "variant": task.variant.name,
            "description": task.variant.description, "job_id": f"{array_job}_{task.task}",
            "overrides": list(task.variant.set), "command": list(task.spec.command),
            "env": secret_names.redact(task.spec.env), "created": created}
    return PlannedFile(f"{task.dir}/{run_records.RECORD}", run_records.record_text(data))


@dataclass(frozen=True)
class DryRun:
    plan: Plan
    files: list[PlannedFile]         # every file a real submit writes, in the order it writes them
    max_array_size: str | None       # for a Slurm sweep: MaxArraySize (and the other limits) and where they came from
    limit_warnings: tuple[str, ...] = ()   # what the cluster's limits may do to the sweep (it is not refused)


def cluster_limits(request: Request) -> tuple[slurm_limits.Limits, str]:
    """A Slurm sweep's limits and where they came from; Slurm's default MaxArraySize when the cluster does not
    answer (a dry run away from the cluster)."""
    try:
        return slurm_limits.limits(request.exp.profile.account), "from scontrol show config"
    except slurm.SlurmError as exc:
        reason = (str(exc).strip().splitlines() or ["no answer"])[-1]
        return (slurm_limits.Limits(slurm.DEFAULT_MAX_ARRAY_SIZE, None, None),
                f"Slurm's default, assumed: scontrol show config gave none: {reason}")


def dry_run(request: Request) -> DryRun:
    """Every check of a real submit (the cluster's limits included), then its plan for a placeholder run
    directory; nothing is written."""
    request = prepare(request)
    if request.sweep is None or not request.slurm:
        return DryRun(*_planned(request, slurm.DEFAULT_MAX_ARRAY_SIZE), None)
    found, source = cluster_limits(request)
    plan, files = _planned(request, found.max_array_size)
    warnings = slurm_limits.check(sum(len(j.tasks) for j in plan.jobs), len(plan.jobs), found)
    return DryRun(plan, files, f"{slurm_limits.describe(found)} ({source})", tuple(warnings))


def _planned(request: Request, max_array_size: int) -> tuple[Plan, list[PlannedFile]]:
    plan = make_plan(request, dry_run_dir(request.exp.profile.output_root, request.name), max_array_size)
    return plan, preview(plan)


def preview(plan: Plan) -> list[PlannedFile]:
    """The files a real submit of ``plan`` writes, with JOBID_<n> for the job ids."""
    ids = placeholders(len(plan.jobs))
    files = list(plan.files)
    for job, array_job in zip(plan.jobs, ids):
        files += job.files
        files += [task_record(plan, t, array_job, CREATED_PLACEHOLDER) for t in job.tasks]
    record = run_record(plan, ids, top_level([f.path for f in files]), CREATED_PLACEHOLDER)
    return files + [PlannedFile(run_records.RECORD, run_records.record_text(record))]


def file_summary(files: list[PlannedFile]) -> str:
    """One line: how many files, how many bytes, and where they go (the run directory, and how many task dirs)."""
    size = sum(len(f.text.encode()) for f in files)
    tasks = len({f.path.split("/", 2)[1] for f in files if f.path.startswith("tasks/")})
    top = [f.path for f in files if "/" not in f.path]
    where = f"{', '.join(top)}" + (f" and {tasks} task directories (tasks/<chunk>_<task>/)" if tasks else "")
    return f"{len(files)} files, {size / 1e6:.1f} MB: {where}"


def write_out(files: list[PlannedFile], out: Path) -> Path:
    """Write every file of a dry run under ``out`` (a new or empty directory), at its path in the run directory."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise run_records.RunError(f"--out: {out} exists and is not an empty directory")
    for file in files:
        path = out / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        run_records.write_new(path, file.text, file.mode)
    return out
