"""The checks every verb runs before it renders or submits: the rules, and Megatron's own argument check.

Megatron's check runs in a subprocess under a Python that has ``megatron.training`` (megatron-core >= 0.17 needs
Python >= 3.12): this interpreter when it has it, else ``$ORCHESTRATOR_MEGATRON_PYTHON``, else the environment
``scripts/megatron-env.sh`` builds. It is never skipped silently: where it cannot run, one warning says why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from ..node import megatron_check as harness
from ..spec import megatron_args
from ..spec.config import Experiment
from ..spec.megatron_versions import resolve_target
from . import data_check
from .problem import Problem
from .rules import blocking, validate

NOT_RUN = "Megatron's own argument check did not run"
HOW_TO_GET_IT = f"run scripts/megatron-env.sh (a Python 3.12 venv with megatron-core), or set {harness.PYTHON_ENV}"


def megatron_python() -> str | None:
    """The interpreter for Megatron's check (``node.megatron_check.megatron_python``)."""
    return harness.megatron_python()


def job_machine(exp: Experiment) -> dict[str, Any]:
    """What the job's machine answers Megatron's queries with: its GPU (the profile's, from the GPU table) and
    the Transformer Engine of its image."""
    from .. import estimate

    try:
        gpu = estimate.gpus.get(exp.profile.gpu or "h100")
    except estimate.gpus.UnknownGpu:  # rule_memory names it
        gpu = estimate.gpus.get("h100")
    return {"capability": list(gpu.capability), "gpus_per_node": exp.profile.gpus_per_node,
            "memory_gb": gpu.memory_gb, "name": gpu.label, "te_version": exp.profile.te_version}


def harness_jobs(exps: list[Experiment]) -> list[dict[str, Any]]:
    """The harness's batch input: each experiment's world size, job machine and rendered arguments."""
    return [{"world_size": exp.world_size, "machine": job_machine(exp),
             "argv": megatron_args.build(exp, "/tmp/orchestrator-check").argv} for exp in exps]


CACHE_ENV = "ORCHESTRATOR_CACHE_DIR"
"""Where Megatron's verdicts are kept (default ``~/.cache/orchestrator``): a verdict is a pure function of the
arguments, the world size, the job machine and the Megatron environment, so a launch checked once is not checked
again until that environment is rebuilt."""


def run_harness(jobs: list[dict[str, Any]], timeout_s: float = 600.0) -> list[dict[str, Any]] | str:
    """Megatron's check over ``jobs``: a result per job (from the cache, the rest in one process of the Megatron
    interpreter), or why it could not run."""
    python = megatron_python()
    if python is None:
        return "no Python >= 3.12 with megatron.training found"
    keys = [_cache_key(python, job) for job in jobs]
    results: dict[str, dict[str, Any]] = {k: r for k in keys if (r := _cached(k)) is not None}
    todo = {k: job for k, job in zip(keys, jobs) if k not in results}
    if todo:
        fresh = harness.run_jobs(python, list(todo.values()), timeout_s)
        if isinstance(fresh, str):
            return fresh
        for key, result in zip(todo, fresh):
            results[key] = result
            _store(key, result)
    return [results[k] for k in keys]


def _cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "orchestrator") / "megatron-check"


def _cache_key(python: str, job: dict[str, Any]) -> str:
    """The job, the interpreter and when its environment was built (a rebuilt venv gets a new key)."""
    try:
        built = os.stat(Path(python).parent.parent).st_mtime_ns
    except OSError:
        built = 0
    text = json.dumps([python, built, job], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _cached(key: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads((_cache_dir() / f"{key}.json").read_text())
        return found
    except (OSError, ValueError):
        return None


def _store(key: str, result: dict[str, Any]) -> None:
    """Keep a verdict (written whole: a temporary file renamed); a cache that cannot be written is no error."""
    try:
        folder = _cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(result))
        tmp.replace(folder / f"{key}.json")
    except OSError:
        pass


def megatron_own_checks(exps: list[Experiment]) -> list[list[Problem]]:
    """Megatron's parser, validation and TransformerConfig over each experiment's rendered arguments (one
    process for all): per experiment its refusal (an error naming the setting where the toolkit knows it), its
    warnings, or one warning that the check could not run."""
    if not exps:
        return []
    results = run_harness(harness_jobs(exps))
    if isinstance(results, str):
        return [[_not_run(results)] for _ in exps]
    return [_problems(exp, result) for exp, result in zip(exps, results)]


def megatron_own_check(exp: Experiment) -> list[Problem]:
    """``megatron_own_checks`` of one experiment."""
    return megatron_own_checks([exp])[0]


def _problems(exp: Experiment, result: dict[str, Any]) -> list[Problem]:
    version = resolve_target(exp.profile.megatron_version).version
    notes = [Problem("megatron", f"Megatron {version} warns: {w}", "see Megatron's message", "warning")
             for w in result.get("warnings", [])]
    if (checked := result.get("version")) and checked != version:
        notes.insert(0, Problem("megatron", f"Megatron's own check ran megatron-core {checked}; the job targets "
                                f"{version}", f"set profile.megatron_version={checked}, or build the check's "
                                "environment with that version", "warning"))
    if result["ok"]:
        return notes
    return [refusal(exp, version, str(result.get("error")), result.get("failed_at")), *notes]


def refusal(exp: Experiment, version: str, error: str, failed_at: str | None) -> Problem:
    """Megatron's refusal as one line: its text and the line that raised, mapped to the toolkit setting whose name
    is the argument it checked (``args.save_interval`` → ``training.save_interval``) where there is one."""
    where = f" at `{failed_at}`" if failed_at else ""
    message = f"Megatron {version} rejects the arguments: {error}{where}"
    for name in re.findall(r"(?:args|self)\.(\w+)", failed_at or ""):
        if (setting := setting_named(exp, name)) is not None:
            return Problem(setting, message, f"change {setting} (--set {setting}=...)")
    flags = [f"--{n.replace('_', '-')}" for n in re.findall(r"(?:args|self)\.(\w+)", failed_at or "")]
    named = f"the setting that renders {', '.join(dict.fromkeys(flags))}" if flags else "the setting it names"
    return Problem("megatron", message, f"change {named} (`orchestrator render --dry-run` shows the arguments)")


def setting_named(exp: Experiment, name: str) -> str | None:
    """The toolkit setting called ``name`` (a recipe group's field or a profile field), derived from the
    dataclasses themselves."""
    groups: dict[str, Any] = {"training": exp.recipe.training, "model": exp.recipe.model, "parallel": exp.recipe.parallel,
              "switches": exp.recipe.switches, "profile": exp.profile}
    for group, value in groups.items():
        if name in {f.name for f in dataclasses.fields(value)}:
            return f"{group}.{name}"
    return None


def _not_run(why: str) -> Problem:
    return Problem("megatron", f"{NOT_RUN}: {why}", HOW_TO_GET_IT, "warning")


def outcome(with_megatron: bool, notes: tuple[Problem, ...]) -> str:
    """What became of Megatron's check, for the run record: accepted, skipped on request, or why it did not run."""
    if not with_megatron:
        return "skipped (--no-megatron)"
    not_run = [p.message for p in notes if p.message.startswith(NOT_RUN)]
    return not_run[0] if not_run else "accepted"


def problems_of(exps: list[Experiment], with_megatron: bool = True) -> list[list[Problem]]:
    """Per experiment: the toolkit's rules, then Megatron's own check (one process for every experiment whose
    rules pass) when ``with_megatron``."""
    found = [validate(exp) for exp in exps]
    for problems, exp in zip(found, exps):     # the data, where it will be read (after the rules: paths are valid)
        if not blocking(problems):
            problems += data_check.problems(exp)
    if with_megatron:
        ready = [i for i, problems in enumerate(found) if not blocking(problems)]
        for i, extra in zip(ready, megatron_own_checks([exps[i] for i in ready])):
            found[i] += extra
    return found


def all_problems(exp: Experiment, with_megatron: bool = True) -> list[Problem]:
    """``problems_of`` one experiment."""
    return problems_of([exp], with_megatron)[0]


class InvalidSubmission(ValueError):
    """Validation problems that block the submission; nothing was submitted."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def check(exp: Experiment, with_megatron: bool = True) -> list[Problem]:
    """Raise InvalidSubmission when a rule blocks the submission (before anything is rendered or submitted);
    else the warnings found (Megatron's among them)."""
    problems = all_problems(exp, with_megatron)
    if stops := blocking(problems):
        raise InvalidSubmission(stops)
    return problems
