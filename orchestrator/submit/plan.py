"""The submission plan: every file a submit writes and every job it submits, computed before anything is.

``prepare`` runs every check a submission runs (its arguments, the validation rules, Megatron's own parser where
``megatron.training`` is importable, what a sweep's one array script holds). ``make_plan`` renders every
file of the run for a given run directory and lists its jobs in submission order. ``launch`` creates the run
directory, writes the plan and submits its jobs; ``submit --dry-run`` prints the same plan made for a placeholder
run directory (``plan_records.dry_run``) and writes nothing.

A job's scheduler id is known only once it is submitted: in a plan, job n (from 1) is ``JOBID_<n>``. A job's
dependency is a value (``Dependency``: the kind and the number of the job it waits for); its script is rendered
from the plan's values again with the real id just before it is written and submitted (``script_text``), never
edited as text. The plan is made once, for the run directory the submission will create. The records
(``record.json``, ``tasks/*/record.json``) are built from the plan and the ids by ``plan_records``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..node import jobspec
from . import provenance, render, run_records, sweep_checks
from .job_ids import Placeholders, job_id
from .backends import slurm
from .checks import InvalidSubmission, check, problems_of
from .problem import Problem
from .rules import blocking
from ..spec.config import Experiment
from ..spec.sweep import Sweep, Variant, expand, own_checkpoints
from ..spec.schema import ConfigError

DRY_RUN_SUFFIX = "DRYRUN"


@dataclass(frozen=True)
class Request:
    """What the user asked to submit: a run, a chain of segments, a preflight, or a sweep (a job array)."""

    exp: Experiment
    overrides: tuple[str, ...] = ()
    sweep: Sweep | None = None
    segments: int = 1
    segment_dependency: str = "afterok"
    preflight: bool = False
    submitted_from: str | None = None
    megatron_check: bool = True
    """Run Megatron's own argument check (``validate``/``submit --no-megatron`` turn it off; the record says so)."""
    notes: tuple[Problem, ...] = field(default=(), compare=False)
    """The warnings ``prepare`` found (the rules' and Megatron's), shown by validate, dry run and submit."""
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)
    """Which code runs (``provenance.collect``, filled by ``prepare``); its diffs are written by a real submit
    beside the plan's files (they are the checkout's state, not part of the plan a dry run shows)."""
    provenance_files: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    """Those diffs: (path in the run directory, text)."""
    recorded_provenance: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """``submit --from``: the provenance the record holds (what differs now is said as a warning)."""
    expanded: tuple[tuple[Variant, Experiment], ...] | None = field(default=None, compare=False, repr=False)
    """A sweep's variants with their experiments, once ``prepare`` has built and checked them (planned from)."""

    def variants(self) -> list[tuple[Variant, Experiment]]:
        """Each variant's experiment (built once by ``prepare``; built here for a request it has not seen)."""
        assert self.sweep is not None
        return list(self.expanded) if self.expanded is not None else expand(self.exp, self.sweep)

    @property
    def name(self) -> str:
        """The run directory's stem."""
        if self.sweep is not None:
            return self.sweep.name
        return f"{self.exp.recipe.name}{'-preflight' if self.preflight else ''}"

    @property
    def kind(self) -> Literal["single", "segments", "array", "preflight"]:
        if self.sweep is not None:
            return "array"
        return "preflight" if self.preflight else ("segments" if self.segments > 1 else "single")

    @property
    def slurm(self) -> bool:
        return self.exp.profile.scheduler == "slurm"


@dataclass(frozen=True)
class PlannedFile:
    path: str                        # relative to the run directory
    text: str

    @property
    def mode(self) -> int:
        return 0o755 if self.path.endswith(".sh") else 0o644


@dataclass(frozen=True)
class PlannedTask:
    """One array task: one sweep variant, in ``tasks/<chunk>_<task>/``."""

    index: int                       # the variant's position in the sweep
    chunk: int
    task: int                        # its array task id within the chunk
    variant: Variant
    spec: jobspec.JobSpec            # its job.json
    files: tuple[PlannedFile, ...]
    warnings: tuple[str, ...] = ()

    @property
    def dir(self) -> str:
        return f"tasks/{self.chunk}_{self.task}"


@dataclass(frozen=True)
class Dependency:
    """A job waits for an earlier job of the same plan."""

    kind: str
    """Slurm's dependency type: afterok (the earlier job succeeded) or afterany (it ended)."""
    on: int
    """The number (from 1) of the job it waits for."""

    def text(self, ids: Sequence[str]) -> str:
        """``--dependency``'s value once the earlier job's id is known (``JOBID_<n>`` placeholders in a dry run)."""
        return f"{self.kind}:{ids[self.on - 1]}"


@dataclass(frozen=True)
class ScriptRender:
    """The values a job's script is rendered from (again, with the real dependency, when it is submitted)."""

    exp: Experiment
    """The experiment whose allocation the script asks for."""
    run_dir: str
    """The job's directory (``tasks/<chunk>_%a`` for an array's script)."""
    name: str
    """The rendered file: sbatch.sh or launch_local.sh."""
    job_name: str | None = None
    """Slurm's job name (None: the recipe's)."""
    array: str | None = None
    """``--array`` (``0-2%4``), or None."""
    preflight: bool = False
    """The node entry runs the preflight payload instead of the command."""
    run_root: str | None = None
    """The run directory a container mounts, when ``run_dir`` is an array's task pattern."""

    def text(self, dependency: str | None) -> str:
        return render.render(self.exp, self.run_dir, job_name=self.job_name, array=self.array,
                             dependency=dependency, preflight=self.preflight, run_root=self.run_root
                             ).files[self.name]


@dataclass(frozen=True)
class PlannedJob:
    """One scheduler job: a single run, one segment, one array chunk, or the local sweep's controller."""

    role: str
    """"run", "segment 2/3", "array 0-2", "array 0-5 (one at a time)"."""
    script: str
    """What it runs, relative to the run directory."""
    files: tuple[PlannedFile, ...]
    """Written just before it is submitted: its tasks' files, then its script (shown with JOBID_<n> placeholders)."""
    ntasks: int
    """Ranks of its allocation."""
    dependency: Dependency | None = None
    """The earlier job it waits for."""
    array: str | None = None
    """``0-2%4`` for an array job."""
    task_offset: int = 0
    """Index of its first variant."""
    log: str = ""
    """Log path pattern (a local job's holds its own JOBID_<n>)."""
    tasks: tuple[PlannedTask, ...] = ()
    """Its array tasks."""
    allocation: Experiment | None = None
    """Whose GPUs and time limit it gets: a sweep's first variant (None: the run's)."""
    source: ScriptRender | None = None
    """What its script is rendered from (None: a local sweep's controller runs the tasks' own scripts)."""
    node_command: tuple[str, ...] = ()
    """What each rank runs (the node entry on its job.json; ``%a`` = the array task); empty for a local sweep's
    controller, whose tasks each run their own."""

    def script_text(self, ids: list[str]) -> str:
        """The script as it is written once the jobs before it have these ids."""
        planned = next(f.text for f in self.files if f.path == self.script)
        if self.dependency is None or self.source is None:
            return planned
        return self.source.text(self.dependency.text(ids))

    def files_to_write(self, ids: list[str]) -> list[PlannedFile]:
        """Its files as they are written: the script with the real dependency."""
        return [PlannedFile(f.path, self.script_text(ids)) if f.path == self.script else f for f in self.files]


@dataclass(frozen=True)
class Plan:
    request: Request
    run_dir: str
    files: tuple[PlannedFile, ...]   # written first
    jobs: tuple[PlannedJob, ...]     # submitted in this order
    first: render.Rendered           # the first job's render: the record's command, environment, Megatron target

    @property
    def warnings(self) -> list[str]:
        """Megatron-version translations of every render, once each."""
        found = list(self.first.args.warnings) + [w for j in self.jobs for t in j.tasks for w in t.warnings]
        return list(dict.fromkeys(found))


# ------------------------------------------------------------------------------------------------- checks
def anchored(exp: Experiment) -> Experiment:
    """The experiment with its output root made absolute (compute nodes and later ``--from`` need the path)."""
    root = str(Path(exp.profile.output_root).expanduser().resolve())
    return Experiment(replace(exp.profile, output_root=root), exp.recipe)


def writable_root(root: Path) -> None:
    """Refuse an output root that is a file, or under which this user cannot create a directory."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    fix = "set profile.output_root (or OUTPUT_DIR) to a directory you can write"
    if not existing.is_dir():
        raise ConfigError("profile.output_root", f"{existing} is a file, not a directory", fix)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError("profile.output_root", f"{existing} is not writable by you", fix)


MAX_SEGMENTS = 500
"""The longest chain one submit makes: 500 segments of a 4-hour limit are 83 days; a chain is submitted job by
job, and Slurm's default MaxJobCount (10,000) is shared by everyone on the cluster. Longer: chain again later with
``submit --from``, whose segments resume from the same checkpoints."""


def _check_arguments(request: Request) -> None:
    if request.segments < 1:
        raise ConfigError("--segments", f"{request.segments} is not a positive number", "use 1 or more")
    if request.segments > MAX_SEGMENTS:
        raise ConfigError("--segments", f"{request.segments} is more than one submit chains ({MAX_SEGMENTS})",
                          f"use at most {MAX_SEGMENTS} (a longer profile.time_limit makes fewer segments), and "
                          "chain more later with submit --from")
    if request.segment_dependency not in ("afterok", "afterany"):
        raise ConfigError("--segment-dependency", f"{request.segment_dependency!r}", "use afterok or afterany")
    if not request.slurm and request.segments > 1:
        raise ConfigError("--segments", "chained segments need a Slurm profile", "drop --segments or pick one")


def _check_slurm_version(request: Request) -> None:
    """Options the script would carry that this Slurm does not know: refused before anything is written."""
    rendered = ["segment"] if request.slurm and request.exp.segment else []
    version = slurm.client_version() if rendered else None
    for option, since in slurm.missing_options(rendered, version).items():
        have = ".".join(map(str, version or ()))
        raise ConfigError(f"profile.{option}", f"Slurm {have} has no #SBATCH --{option} (Slurm "
                          f"{since[0]}.{since[1]} brought it)", f"set profile.{option}=null, or submit from a "
                          f"cluster with Slurm >= {since[0]}.{since[1]}")


def prepare(request: Request) -> Request:
    """Every check a submission runs, before anything is rendered; the request with its output root absolute.
    Raises ConfigError (bad arguments or sweep) or InvalidSubmission (blocking problems)."""
    if request.sweep is None:
        _check_arguments(request)
    request = replace(request, exp=anchored(request.exp))
    writable_root(Path(request.exp.profile.output_root))
    _check_slurm_version(request)
    found, diffs = provenance.collect(request.exp)
    said = tuple(Problem("provenance", f"differs from the recorded run: {change}", "expected after an upgrade; "
                         "compare the runs with orchestrator compare", "warning")
                 for change in provenance.changes(request.recorded_provenance or {}, found)) \
        if request.recorded_provenance is not None else ()
    request = replace(request, provenance=found, provenance_files=tuple(diffs.items()))
    if request.sweep is None:
        return replace(request, notes=tuple(check(request.exp, request.megatron_check)) + said)
    variants = expand(request.exp, request.sweep)
    own_checkpoints(variants)
    checked = problems_of([exp for _variant, exp in variants], request.megatron_check)
    for (variant, _exp), problems in zip(variants, checked):
        if stops := blocking(problems):
            raise InvalidSubmission([replace(p, setting=f"sweep.variants.{variant.name}: {p.setting}") for p in stops])
    (sweep_checks.one_array_script if request.slurm else sweep_checks.one_controller)(variants)
    notes = tuple(dict.fromkeys(p for problems in checked for p in problems)) + said
    return replace(request, expanded=tuple(variants), notes=notes)


# ------------------------------------------------------------------------------------------------- the plan
def chunk_sizes(count: int, max_array_size: int) -> list[int]:
    """Array task ids must stay below MaxArraySize: split ``count`` tasks into chunks of at most that many."""
    size = max(1, max_array_size)
    return [min(size, count - start) for start in range(0, count, size)]


def make_plan(request: Request, run_dir: str, max_array_size: int = slurm.DEFAULT_MAX_ARRAY_SIZE) -> Plan:
    """Every file and job of a prepared request, for ``run_dir`` (which need not exist)."""
    if request.sweep is not None:
        return _plan_sweep(request, request.sweep, run_dir, max_array_size)
    first = render.render(request.exp, run_dir, preflight=request.preflight)
    if request.slurm:
        jobs = tuple(_segment(request, run_dir, index) for index in range(request.segments))
    else:
        jobs = (_local_run(request, run_dir, first),)
    return Plan(request, run_dir, (PlannedFile("job.json", first.files["job.json"]),), jobs, first)


def _segment(request: Request, run_dir: str, index: int) -> PlannedJob:
    """Segment ``index`` (from 0) of a chain, or the one job of a single run; each waits for the one before."""
    exp, count = request.exp, request.segments
    dependency = Dependency(request.segment_dependency, index) if index else None
    source = ScriptRender(exp, run_dir, "sbatch.sh", preflight=request.preflight)
    text = source.text(dependency.text(Placeholders(index)) if dependency else None)
    name = "sbatch.sh" if count == 1 else f"sbatch-segment{index + 1}.sh"
    return PlannedJob(role="run" if count == 1 else f"segment {index + 1}/{count}", script=name,
                      files=(PlannedFile(name, text),), ntasks=exp.nodes * exp.profile.gpus_per_node,
                      dependency=dependency, log=render.log_pattern(run_dir, array=False), source=source,
                      node_command=tuple(render.node_command(exp, run_dir, request.preflight)))


def _local_run(request: Request, run_dir: str, rendered: render.Rendered) -> PlannedJob:
    exp = request.exp
    return PlannedJob(role="run", script="launch_local.sh",
                      files=(PlannedFile("launch_local.sh", rendered.files["launch_local.sh"]),),
                      ntasks=exp.world_size, log=f"{run_dir}/logs/{exp.recipe.name}_{job_id(1)}.log",
                      node_command=tuple(render.node_command(exp, run_dir, request.preflight)))


def _task(run_dir: str, chunk: int, task: int, index: int, variant: Variant, exp: Experiment) -> PlannedTask:
    rel = f"tasks/{chunk}_{task}"
    rendered = render.render(exp, f"{run_dir}/{rel}")
    files = tuple(PlannedFile(f"{rel}/{name}", text) for name, text in rendered.files.items()
                  if name != "sbatch.sh")            # a Slurm task runs its chunk's array script
    return PlannedTask(index, chunk, task, variant, rendered.spec, files, tuple(rendered.args.warnings))


def _plan_sweep(request: Request, sweep: Sweep, run_dir: str, max_array_size: int) -> Plan:
    variants = request.variants()
    first = render.render(variants[0][1], run_dir)
    if not request.slurm:
        return Plan(request, run_dir, (), (_local_sweep(request, run_dir, variants),), first)
    jobs, offset = [], 0
    for chunk, size in enumerate(chunk_sizes(len(variants), max_array_size)):
        jobs.append(_array_chunk(request, sweep, run_dir, chunk, offset, variants[offset:offset + size]))
        offset += size
    return Plan(request, run_dir, (), tuple(jobs), first)


def _array_chunk(request: Request, sweep: Sweep, run_dir: str, chunk: int, offset: int,
                 members: list[tuple[Variant, Experiment]]) -> PlannedJob:
    """One job array of up to MaxArraySize variants; each chunk starts after the one before (afterany)."""
    tasks = tuple(_task(run_dir, chunk, task, offset + task, variant, exp)
                  for task, (variant, exp) in enumerate(members))
    first = members[0][1]   # the sweep's overrides included: variants share its script (one_array_script)
    array = f"0-{len(members) - 1}%{sweep.max_parallel or first.profile.max_array_parallel}"
    dependency = Dependency("afterany", chunk) if chunk else None
    task_dir = f"{run_dir}/tasks/{chunk}_%a"
    source = ScriptRender(first, task_dir, "sbatch.sh", job_name=sweep.name, array=array, run_root=run_dir)
    script = PlannedFile(f"sbatch-array{chunk}.sh", source.text(dependency.text(Placeholders(chunk))
                                                                if dependency else None))
    return PlannedJob(role=f"array {offset}-{offset + len(members) - 1}", script=script.path,
                      files=(*(f for t in tasks for f in t.files), script),
                      ntasks=first.world_size, dependency=dependency, array=array, task_offset=offset,
                      log=render.log_pattern(task_dir, array=True), tasks=tasks, allocation=first, source=source,
                      node_command=tuple(render.node_command(first, task_dir)))


def _local_sweep(request: Request, run_dir: str, variants: list[tuple[Variant, Experiment]]) -> PlannedJob:
    """The local back-end's array: one controller running the variants one after another."""
    tasks = tuple(_task(run_dir, 0, index, index, variant, exp) for index, (variant, exp) in enumerate(variants))
    last = len(tasks) - 1
    return PlannedJob(role=f"array 0-{last} (one at a time)", script="tasks/0_*/launch_local.sh",
                      files=tuple(f for t in tasks for f in t.files), ntasks=variants[0][1].world_size,
                      array=f"0-{last}%1", tasks=tasks, allocation=variants[0][1])


# ------------------------------------------------------------------------------------------------- dry run
def dry_run_dir(output_root: str, name: str) -> str:
    """Where a dry run pretends the run directory is (nothing is written there)."""
    return str(Path(output_root).expanduser().resolve() / f"{name}-{DRY_RUN_SUFFIX}")
