"""The one verdict of ``validate`` and ``submit --dry-run``: every check a real submit runs, rendering included.

``verdict`` runs the rules, Megatron's own check where importable, and the plan (every file rendered for a
placeholder run directory): ``validate`` prints its problems or ``ok``; ``submit --dry-run`` prints its problems or
the plan. Both stop on the same inputs, with the same lines: blocking problems come back as the verdict's
problems; a ConfigError (a bad argument, a sweep variant, a value rendering refuses) propagates to both alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import InvalidSubmission
from .plan import Request
from .plan_records import DryRun, dry_run
from .problem import Problem


@dataclass(frozen=True)
class Verdict:
    """Whether a request would be submitted, and why not."""

    problems: tuple[Problem, ...]
    """Every problem found: the blocking ones when it fails; the warnings of the rules when it passes."""
    dry: DryRun | None
    """The plan for a placeholder run directory; None when a problem blocks it."""

    @property
    def ok(self) -> bool:
        return self.dry is not None


def verdict(request: Request) -> Verdict:
    """Run every check of a submission and make its plan (nothing is written or submitted)."""
    try:
        dry = dry_run(request)
    except InvalidSubmission as exc:
        return Verdict(tuple(exc.problems), None)
    return Verdict(tuple(p for p in dry.plan.request.notes if p.severity in ("warning", "note")), dry)
