"""Megatron 0.19.2's own ``parse_args`` + ``validate_args`` + ``TransformerConfig`` over every launch the toolkit
renders: every shipped profile × recipe (single job, ``--segments``), every variant of every shipped sweep, and
run.sh's default per profile. The arguments are taken from the rendered ``job.json`` files of a dry run, so this
checks what a job would run, not a second rendering. It runs in the Python >= 3.12 environment of
``scripts/megatron-env.sh`` (megatron.training needs 3.12); without one the test fails, it is never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.spec.config import Experiment, load_experiment
from orchestrator.spec.schema import ConfigError
from orchestrator.spec.sweep import load_sweep
from orchestrator.submit import checks, plan_records
from orchestrator.submit.checks import InvalidSubmission
from orchestrator.submit.plan import Request
from orchestrator.submit.rules import blocking, validate
from orchestrator.submit.run_script import block_variables, overrides_from_env

ROOT = Path(__file__).parents[2]
PROFILES = sorted(p.stem for p in (ROOT / "cluster_profiles").glob("*.yaml"))
RECIPES = sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml"))
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
FILLS = ["profile.account=acct", "profile.container.image=/images/megatron.sqsh"]
"""What a user fills in on a Slurm cluster (the local back-end runs no container: it refuses an image)."""


def fills(profile: str) -> list[str]:
    from orchestrator.spec.config import load_profile

    return FILLS if load_profile(profile).scheduler == "slurm" else []


def experiment(profile: str, recipe: str | None, extra: list[str] = []) -> Experiment | None:
    """The profile and recipe as a user fills them (account, image, the recipe's node count); None where the
    toolkit's own rules refuse the pair (e.g. the 671B recipe on a 2-GPU machine)."""
    exp = load_experiment(profile, recipe, [*fills(profile), *extra])
    if exp.recipe.nodes is not None and exp.recipe.nodes != exp.profile.nodes and exp.profile.scheduler == "slurm":
        exp = load_experiment(profile, recipe, [*fills(profile), f"profile.nodes={exp.recipe.nodes}", *extra])
    return None if blocking(validate(exp)) else exp


def launches(request: Request) -> list[dict[str, Any]]:
    """The harness's jobs for every job.json of the request's dry run (its Megatron arguments as rendered)."""
    dry = plan_records.dry_run(request)
    out = []
    for f in dry.files:
        if f.path.endswith("job.json"):
            command = json.loads(f.text)["command"]
            argv = command[command.index("orchestrator.train") + 1:]
            out.append({"world_size": request.exp.world_size, "machine": checks.job_machine(request.exp),
                        "argv": argv, "what": f"{request.exp.profile.name} + {request.exp.recipe.name}: {f.path}"})
    return out


def every_launch() -> tuple[list[dict[str, Any]], set[str], set[str], set[str]]:
    jobs: list[dict[str, Any]] = []
    profiles, recipes, sweeps = set(), set(), set()
    for profile in PROFILES:
        for recipe in RECIPES:
            if (exp := experiment(profile, recipe)) is None:
                continue
            profiles.add(profile)
            recipes.add(recipe)
            jobs += launches(Request(exp, megatron_check=False))
            if exp.profile.scheduler == "slurm":
                jobs += launches(Request(exp, segments=2, megatron_check=False))
        run_sh = {str(row["name"]): str(row["value"]) for row in block_variables(load_experiment(profile, None, fills(profile)).profile)}
        run_sh.update(ACCOUNT="acct", **({"CONTAINER_IMAGE": "/images/megatron.sqsh"} if fills(profile) else {}))
        if (exp := experiment(profile, None, overrides_from_env(run_sh))) is not None:
            jobs += launches(Request(exp, megatron_check=False))
        for path in SWEEPS:
            sweep = load_sweep(path)
            if (exp := experiment(profile, sweep.recipe, ["profile.nodes=1"])) is None:
                continue
            try:
                jobs += launches(Request(exp, sweep=sweep, megatron_check=False))
            except (ConfigError, InvalidSubmission):   # a variant the rules refuse on this profile
                continue
            sweeps.add(path.stem)
    profiled = experiment("local", None, ["profiling.steps=4-6", "profiling.memory_snapshot=true"])
    assert profiled is not None
    jobs += launches(Request(profiled, megatron_check=False))      # submit --profile-steps 4-6 --memory-snapshot
    return jobs, profiles, recipes, sweeps


@pytest.mark.usefixtures("slurm_with_segment")
def test_megatron_accepts_every_launch_the_toolkit_renders() -> None:
    if checks.megatron_python() is None:
        pytest.fail(f"no Python >= 3.12 with megatron.training: {checks.HOW_TO_GET_IT}")
    jobs, profiles, recipes, sweeps = every_launch()
    assert profiles == set(PROFILES) and recipes == set(RECIPES) and sweeps == {p.stem for p in SWEEPS}
    results = checks.run_harness([{k: v for k, v in job.items() if k != "what"} for job in jobs])
    assert not isinstance(results, str), results
    refused = [f"{job['what']}: {r['error']} at {r['failed_at']}" for job, r in zip(jobs, results) if not r["ok"]]
    assert refused == [], "\n".join(refused)
    assert len(jobs) >= len(PROFILES) * 2


def test_megatron_refuses_a_checkpoint_directory_without_a_save_interval() -> None:
    """The harness is the real Megatron: the launch as rendered before the fix (no --save-interval) is refused,
    and the refusal names the toolkit's setting."""
    exp = load_experiment("h100-eos", "deepseek-v3", FILLS)
    job = launches(Request(exp, megatron_check=False))[0]
    at = job["argv"].index("--save-interval")
    job["argv"][at:at + 2] = []
    results = checks.run_harness([{k: v for k, v in job.items() if k != "what"}])
    assert not isinstance(results, str), results
    assert results[0]["ok"] is False and results[0]["failed_at"] == "assert args.save_interval is not None"
    problem = checks.refusal(exp, "0.19.2", results[0]["error"], results[0]["failed_at"])
    assert problem.setting == "training.save_interval" and "save_interval" in problem.message


def test_validate_says_when_megatrons_check_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """No interpreter with megatron.training: one warning naming why and how to get one, never a silent ok."""
    monkeypatch.setattr(checks, "megatron_python", lambda: None)
    found = checks.megatron_own_check(load_experiment("h100-eos", "deepseek-v3", FILLS))
    assert [(p.setting, p.severity) for p in found] == [("megatron", "warning")]
    assert "did not run" in found[0].message and "megatron-env.sh" in found[0].fix
