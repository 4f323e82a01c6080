"""Submission through submitit: single runs, job arrays for sweeps, chained segments; Slurm or local.

Slurm: ``TemplateSlurmExecutor`` is submitit's ``SlurmExecutor`` whose submission file is our rendered
``templates/sbatch.sh.j2`` text, so submitit writes the file, runs ``sbatch``, parses the job id and returns its
``SlurmJob``. Local: ``ScriptLocalExecutor`` is submitit's ``LocalExecutor`` running the rendered
``launch_local.sh`` (one process per rank, the same node entry) from a pickled call whose result is the exit status.

* single run: one job, ``record.json`` with its id;
* segments (``segments=N``): N jobs in one run directory, each ``--dependency=afterok:<previous>`` (or afterany);
  Megatron resumes from ``--load`` (= ``--save``) and ``--exit-duration-in-mins`` comes from the time limit;
* sweep: one array task per variant (``tasks/<chunk>_<task>/job.json``, the node entry replaces ``%a``),
  ``--array=0-N%P``; more variants than MaxArraySize are split into chunks, each chunk starting after the previous
  one (``afterany``), so no more than P tasks ever run at once.

Nothing is submitted unless the validation rules pass and every file rendered.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import submitit
from concurrent.futures import ThreadPoolExecutor

from . import __version__, render, runs, slurm
from .checks import all_problems
from .config import ClusterProfile, Experiment, Recipe
from .sweep import Sweep, expand
from .typed import ConfigError, from_dict, to_dict
from .validate import Problem, blocking

SUBMITIT_DIR = ".submitit"
PREFLIGHT_FLAG = "--preflight"


class LaunchError(RuntimeError):
    """The scheduler refused or failed a submission (message is one line)."""


class InvalidSubmission(ValueError):
    """Validation problems that block the submission; nothing was submitted."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass
class Submission:
    run_dir: Path
    record: runs.RunRecord
    jobs: list[Any] = field(default_factory=list)     # submitit Job objects, in submission order


# ------------------------------------------------------------------------------------------------- executors
class TemplateSlurmExecutor(submitit.SlurmExecutor):
    """submitit's SlurmExecutor submitting a rendered sbatch script as it is."""

    def __init__(self, folder: Path, script: str, num_tasks: int) -> None:
        super().__init__(folder)
        self._script = script
        self._ntasks = num_tasks

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        return self._script

    def _num_tasks(self) -> int:
        return self._ntasks

    def submit_script(self) -> Any:
        try:
            return self._submit_command("")
        except (submitit.core.utils.FailedJobError, OSError) as exc:
            lines = str(exc).strip().splitlines()
            raise LaunchError(f"sbatch refused the job: {lines[-1] if lines else repr(exc)}") from exc


def run_local_script(script: str, log_dir: str, name: str) -> int:
    """The local job's body (runs inside submitit's local controller): bash SCRIPT, logs appended; exit status."""
    job_id = os.environ.get("SUBMITIT_LOCAL_JOB_ID", str(os.getpid()))
    return _run_logged(script, Path(log_dir) / f"{name}_{job_id}.log")


def run_local_tasks(tasks: list[tuple[str, str, str]]) -> int:
    """A sweep's body on the local back-end: each variant's launch_local.sh in turn, since they share this
    machine's GPUs. Task i logs to ``<name>_<controller>_<i>.log``, leaves its start time (epoch seconds) in
    TASK_STARTED and its exit status in TASK_EXIT."""
    controller = os.environ.get("SUBMITIT_LOCAL_JOB_ID", str(os.getpid()))
    worst = 0
    for index, (script, log_dir, name) in enumerate(tasks):
        (Path(script).parent / runs.TASK_STARTED).write_text(f"{time.time():.3f}\n")
        code = _run_logged(script, Path(log_dir) / f"{name}_{controller}_{index}.log")
        (Path(script).parent / runs.TASK_EXIT).write_text(f"{code}\n")
        worst = worst or code
    return worst


def _run_logged(script: str, log_path: Path) -> int:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(["bash", script], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait()
        finally:
            if proc.poll() is None:             # cancelled: stop every rank of the launcher's session
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()


class ScriptLocalExecutor(submitit.LocalExecutor):
    """submitit's LocalExecutor running a rendered launch_local.sh as one local job."""

    def submit_script(self, script: Path, log_dir: Path, name: str) -> Any:
        """One rendered launch_local.sh as one local job."""
        return self._submit_detached(run_local_script, str(script), str(log_dir), name)

    def submit_tasks(self, tasks: list[tuple[str, str, str]]) -> Any:
        """A local sweep: (script, log dir, name) per task, run one after another by one controller."""
        return self._submit_detached(run_local_tasks, tasks)

    def _submit_detached(self, func: Any, *args: Any) -> Any:
        """Start the controller detached from our stdin/stdout/stderr (it outlives this process: whoever reads
        our output must not wait for the job) with the toolkit importable."""
        package_root = str(Path(__file__).resolve().parent.parent)
        saved_path = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, saved_path) if p)
        saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            with open(os.devnull, "rb") as null, open(Path(self.folder) / "controller.out", "ab") as out:
                os.dup2(null.fileno(), 0)
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                return self.submit(func, *args)
        finally:
            for fd, saved in zip((0, 1, 2), saved_fds):
                os.dup2(saved, fd)
                os.close(saved)
            if saved_path is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved_path


def local_gpus(count: int) -> dict[str, Any]:
    """submitit's local controller sets CUDA_VISIBLE_DEVICES to the GPUs it was given (none by default, which hides
    every GPU from the ranks): give it the profile's count, taken from the GPUs visible to us."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    ids = tuple(int(x) for x in visible.split(",") if x.strip().isdigit()) if visible else ()
    return {"gpus_per_node": count, "visible_gpus": ids} if ids else {"gpus_per_node": count}


# ------------------------------------------------------------------------------------------------- helpers
def anchored(exp: Experiment) -> Experiment:
    """The experiment with its output root made absolute (compute nodes and later ``--from`` need the path)."""
    root = str(Path(exp.profile.output_root).expanduser().resolve())
    return Experiment(replace(exp.profile, output_root=root), exp.recipe)


def check(exp: Experiment) -> None:
    """Raise InvalidSubmission when a rule blocks the submission (before anything is rendered or submitted)."""
    problems = blocking(all_problems(exp))
    if problems:
        raise InvalidSubmission(problems)


def versions(target: Any) -> dict[str, str]:
    out = {"orchestrator": __version__, "python": platform.python_version(), "submitit": submitit.__version__,
           "megatron_target": f"{target.version} ({target.source})"}
    try:
        out["slurm"] = subprocess.run(["sbatch", "--version"], capture_output=True, text=True,
                                      timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        out["slurm"] = "not installed"
    return out


def preflight_script(text: str, exp: Experiment, run_dir: str) -> str:
    """A rendered script whose node entry runs the preflight payload instead of the command."""
    plain = render.shjoin(render.node_command(exp, run_dir))
    if plain not in text:
        raise LaunchError("the rendered script does not call the node entry: cannot make it a preflight")
    command = render.node_command(exp, run_dir)
    return text.replace(plain, render.shjoin(command[:-1] + [PREFLIGHT_FLAG, command[-1]]))


def _base_record(exp: Experiment, run_dir: Path, kind: str, overrides: list[str], rendered: render.Rendered,
                 files: list[str], submitted_from: str | None) -> runs.RunRecord:
    return runs.RunRecord(
        run_id=run_dir.name, kind=kind, backend=exp.profile.scheduler,
        profile={"name": exp.profile.name, "resolved": to_dict(exp.profile)},
        recipe={"name": exp.recipe.name, "resolved": to_dict(exp.recipe)},
        overrides=list(overrides), command=list(rendered.spec.get("command", [])),
        env=runs.redact_env(dict(rendered.spec.get("env", {}))), versions=versions(rendered.args.target),
        files=files, submitted_from=submitted_from)


def _write(run_dir: Path, name: str, text: str) -> str:
    runs.write_new(run_dir / name, text, 0o755 if name.endswith(".sh") else 0o644)
    return name


def _slurm_job(run_dir: Path, script: str, ntasks: int) -> Any:
    (run_dir / SUBMITIT_DIR).mkdir(exist_ok=True)
    return TemplateSlurmExecutor(run_dir / SUBMITIT_DIR, script, ntasks).submit_script()


def _log_pattern(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#SBATCH --output="):
            return line.split("=", 1)[1]
    return ""


def _finish(run_dir: Path, record: runs.RunRecord, jobs: list[Any], error: Exception | None) -> Submission:
    if error is not None:
        record.error = str(error)
    runs.write_record(run_dir, record)
    if error is not None:
        raise LaunchError(f"{error} (run directory {run_dir}, record.json lists what was submitted)") from error
    return Submission(run_dir, record, jobs)


# ------------------------------------------------------------------------------------------------- single / segments
def submit_run(exp: Experiment, overrides: list[str] | None = None, segments: int = 1,
               segment_dependency: str = "afterok", preflight: bool = False,
               submitted_from: str | None = None) -> Submission:
    """One run (or a chain of ``segments`` jobs) in a new run directory."""
    if segments < 1:
        raise ConfigError("--segments", f"{segments} is not a positive number", "use 1 or more")
    if segment_dependency not in ("afterok", "afterany"):
        raise ConfigError("--segment-dependency", f"{segment_dependency!r}", "use afterok or afterany")
    if exp.profile.scheduler == "local" and segments > 1:
        raise ConfigError("--segments", "chained segments need a Slurm profile", "drop --segments or pick one")
    exp = anchored(exp)
    check(exp)
    render.render(exp, "/probe")          # render errors surface before any directory exists
    run_dir = runs.new_run_dir(exp.profile.output_root, f"{exp.recipe.name}{'-preflight' if preflight else ''}")
    first = render.render(exp, str(run_dir))
    files = [_write(run_dir, "job.json", first.files["job.json"])]
    kind = "preflight" if preflight else ("segments" if segments > 1 else "single")
    record = _base_record(exp, run_dir, kind, overrides or [], first, files, submitted_from)
    if exp.profile.scheduler == "local":
        return _submit_local(exp, run_dir, first, record, preflight)
    jobs: list[Any] = []
    error: Exception | None = None
    previous: str | None = None
    for index in range(segments):
        dependency = f"{segment_dependency}:{previous}" if previous else None
        text = render.render(exp, str(run_dir), dependency=dependency).files["sbatch.sh"]
        text = preflight_script(text, exp, str(run_dir)) if preflight else text
        name = _write(run_dir, "sbatch.sh" if segments == 1 else f"sbatch-segment{index + 1}.sh", text)
        files.append(name)
        role = "run" if segments == 1 else f"segment {index + 1}/{segments}"
        try:
            job = _slurm_job(run_dir, text, exp.nodes * exp.profile.gpus_per_node)
        except LaunchError as exc:
            error = exc
            break
        jobs.append(job)
        previous = str(job.job_id)
        record.jobs.append(runs.JobEntry(job_id=previous, role=role, script=name, dependency=dependency,
                                         log=_log_pattern(text)))
    return _finish(run_dir, record, jobs, error)


def _submit_local(exp: Experiment, run_dir: Path, rendered: render.Rendered, record: runs.RunRecord,
                  preflight: bool) -> Submission:
    text = rendered.files["launch_local.sh"]
    text = preflight_script(text, exp, str(run_dir)) if preflight else text
    record.files.append(_write(run_dir, "launch_local.sh", text))
    executor = ScriptLocalExecutor(run_dir / SUBMITIT_DIR)
    limit = slurm.parse_elapsed(exp.profile.time_limit) or 3600
    executor.update_parameters(timeout_min=max(1, limit // 60), tasks_per_node=1, nodes=1,
                               **local_gpus(exp.profile.gpus_per_node))
    job = executor.submit_script(run_dir / "launch_local.sh", run_dir / "logs", exp.recipe.name)
    record.jobs.append(runs.JobEntry(job_id=str(job.job_id), role="run", script="launch_local.sh",
                                     log=str(run_dir / "logs" / f"{exp.recipe.name}_{job.job_id}.log")))
    return _finish(run_dir, record, [job], None)


# ------------------------------------------------------------------------------------------------- arrays
def _same_allocation(variants: list[tuple[Any, Experiment]]) -> None:
    def shape(e: Experiment) -> tuple[Any, ...]:
        p = e.profile
        return (e.nodes, p.gpus_per_node, p.time_limit, p.partition, p.account, p.scheduler, p.gpu_request)
    first = shape(variants[0][1])
    for variant, exp in variants[1:]:
        if shape(exp) != first:
            raise ConfigError(f"sweep.variants.{variant.name}", "changes nodes, GPUs, time limit, partition or "
                              "account: array tasks share one allocation shape", "move it to its own sweep")


def chunk_sizes(count: int, max_array_size: int) -> list[int]:
    """Array task ids must stay below MaxArraySize: split ``count`` tasks into chunks of at most that many."""
    size = max(1, max_array_size)
    return [min(size, count - start) for start in range(0, count, size)]


def submit_sweep(base: Experiment, sweep: Sweep, overrides: list[str] | None = None,
                 submitted_from: str | None = None) -> Submission:
    """One array task per sweep variant, in a new run directory."""
    base = anchored(base)
    variants = expand(base, sweep)
    _same_allocation(variants)
    with ThreadPoolExecutor(max_workers=min(8, len(variants))) as pool:   # Megatron's own check: one process each
        list(pool.map(check, [exp for _variant, exp in variants]))
    for _variant, exp in variants:
        render.render(exp, "/probe")
    run_dir = runs.new_run_dir(base.profile.output_root, sweep.name)
    probe = render.render(variants[0][1], str(run_dir))
    record = _base_record(base, run_dir, "array", overrides or [], probe, [], submitted_from)
    record.command = []
    record.sweep = to_dict(sweep)
    if base.profile.scheduler == "local":
        return _submit_local_sweep(run_dir, record, sweep, variants)
    parallel = sweep.max_parallel or base.profile.max_array_parallel
    sizes = chunk_sizes(len(variants), slurm.max_array_size())
    jobs: list[Any] = []
    error: Exception | None = None
    offset, previous = 0, None
    for chunk, size in enumerate(sizes):
        members = variants[offset:offset + size]
        specs = []
        for task, (_variant, exp) in enumerate(members):
            task_dir = run_dir / "tasks" / f"{chunk}_{task}"
            (task_dir / "logs").mkdir(parents=True)
            rendered = render.render(exp, str(task_dir))
            _write(task_dir, "job.json", rendered.files["job.json"])
            specs.append(rendered.spec)
        pattern_dir = f"{run_dir}/tasks/{chunk}_%a"
        dependency = f"afterany:{previous}" if previous else None
        text = render.render(members[0][1], pattern_dir, job_name=sweep.name, array=f"0-{size - 1}%{parallel}",
                             dependency=dependency).files["sbatch.sh"]
        name = _write(run_dir, f"sbatch-array{chunk}.sh", text)
        record.files.append(name)
        try:
            job = _slurm_job(run_dir, text, members[0][1].nodes * base.profile.gpus_per_node)
        except LaunchError as exc:
            error = exc
            break
        jobs.append(job)
        previous = str(job.job_id)
        record.jobs.append(runs.JobEntry(job_id=previous, role=f"array {offset}-{offset + size - 1}", script=name,
                                         dependency=dependency, array=f"0-{size - 1}%{parallel}",
                                         task_offset=offset, log=_log_pattern(text)))
        for task, (variant, _exp) in enumerate(members):
            _record_task(run_dir, record, chunk, task, offset + task, variant, specs[task], previous)
        offset += size
    return _finish(run_dir, record, jobs, error)


def _submit_local_sweep(run_dir: Path, record: runs.RunRecord, sweep: Sweep,
                        variants: list[tuple[Any, Experiment]]) -> Submission:
    """The local back-end's array: one controller running the variants one after another."""
    tasks, specs = [], []
    for index, (_variant, exp) in enumerate(variants):
        task_dir = run_dir / "tasks" / f"0_{index}"
        (task_dir / "logs").mkdir(parents=True)
        rendered = render.render(exp, str(task_dir))
        _write(task_dir, "job.json", rendered.files["job.json"])
        _write(task_dir, "launch_local.sh", rendered.files["launch_local.sh"])
        tasks.append((str(task_dir / "launch_local.sh"), str(task_dir / "logs"), sweep.name))
        specs.append(rendered.spec)
    executor = ScriptLocalExecutor(run_dir / SUBMITIT_DIR)
    limit = slurm.parse_elapsed(variants[0][1].profile.time_limit) or 3600
    executor.update_parameters(timeout_min=max(1, len(tasks) * limit // 60), tasks_per_node=1, nodes=1,
                               **local_gpus(variants[0][1].profile.gpus_per_node))
    job = executor.submit_tasks(tasks)
    record.jobs.append(runs.JobEntry(job_id=str(job.job_id), role=f"array 0-{len(tasks) - 1} (one at a time)",
                                     script="tasks/0_*/launch_local.sh", array=f"0-{len(tasks) - 1}%1"))
    for index, (variant, _exp) in enumerate(variants):
        _record_task(run_dir, record, 0, index, index, variant, specs[index], str(job.job_id))
    return _finish(run_dir, record, [job], None)


def _record_task(run_dir: Path, record: runs.RunRecord, chunk: int, task: int, index: int, variant: Any,
                 spec: dict[str, Any], array_job: str) -> None:
    rel = f"tasks/{chunk}_{task}"
    entry = runs.TaskEntry(index=index, variant=variant.name, dir=rel, job_id=f"{array_job}_{task}",
                           overrides=list(variant.set))
    record.tasks.append(entry)
    runs.write_task_record(run_dir / rel, {
        "run_id": record.run_id, "index": index, "variant": variant.name, "description": variant.description,
        "job_id": entry.job_id, "overrides": list(variant.set), "command": spec["command"],
        "env": runs.redact_env(dict(spec["env"])), "created": runs.now_iso()})


# ------------------------------------------------------------------------------------------------- again
def resubmit(run_dir: str | os.PathLike[str]) -> Submission:
    """``submit --from RUN_DIR``: the same resolved profile, recipe (and sweep / segments) in a new run."""
    old = runs.load_record(run_dir)
    exp = Experiment(from_dict(ClusterProfile, old.profile["resolved"], "profile"),
                     from_dict(Recipe, old.recipe["resolved"], "recipe"))
    origin = str(Path(run_dir).resolve())
    if old.kind == "array" and old.sweep:
        return submit_sweep(exp, from_dict(Sweep, old.sweep, "sweep"), old.overrides, submitted_from=origin)
    segments = max(1, len(old.jobs)) if old.kind == "segments" else 1
    dependency = (old.jobs[1].dependency or "afterok").split(":")[0] if segments > 1 else "afterok"
    return submit_run(exp, old.overrides, segments=segments, segment_dependency=dependency,
                      preflight=old.kind == "preflight", submitted_from=origin)
