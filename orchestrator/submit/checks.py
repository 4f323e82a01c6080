"""The checks every verb runs before it renders or submits: the rules, and Megatron's own parser when present."""

from __future__ import annotations

import json
import subprocess
import sys

from ..spec import megatron_args
from ..spec.config import Experiment
from ..spec.megatron_versions import resolve_target
from ..node.megatron_check import available as megatron_available
from .rules import Problem, blocking, validate


def megatron_own_check(exp: Experiment, timeout_s: float = 120.0) -> Problem | None:
    """Run Megatron's parser over the rendered arguments (subprocess); None when accepted or unavailable."""
    if not megatron_available():
        return None
    argv = megatron_args.build(exp, "/tmp/orchestrator-check").argv
    cmd = [sys.executable, "-m", "orchestrator.node.megatron_check", "--world-size", str(exp.world_size), "--", *argv]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return Problem("megatron", f"Megatron's own check did not finish in {timeout_s:.0f} s", "run it on a compute node", "warning")
    last = out.stdout.strip().splitlines()[-1:] or ["{}"]
    result = json.loads(last[0]) if last[0].startswith("{") else {"ok": False, "error": out.stderr[-300:]}
    if result.get("ok"):
        return None
    return Problem("megatron", f"Megatron {resolve_target(exp.profile.megatron_version).version} "
                   f"rejects the arguments: {result.get('error')}", "change the setting it names")


def all_problems(exp: Experiment, with_megatron: bool = True) -> list[Problem]:
    """The toolkit's rules, then Megatron's own parser when the toolkit's rules pass."""
    problems = validate(exp)
    if with_megatron and not blocking(problems):
        if (own := megatron_own_check(exp)) is not None:
            problems.append(own)
    return problems


class InvalidSubmission(ValueError):
    """Validation problems that block the submission; nothing was submitted."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def check(exp: Experiment, with_megatron: bool = True) -> None:
    """Raise InvalidSubmission when a rule blocks the submission (before anything is rendered or submitted)."""
    problems = blocking(all_problems(exp, with_megatron))
    if problems:
        raise InvalidSubmission(problems)
