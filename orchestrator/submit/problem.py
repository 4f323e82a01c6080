"""A reason not to submit: the one line every rule, check and verdict speaks in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..spec.config import Experiment

Severity = Literal["error", "missing", "warning", "note"]


@dataclass(frozen=True)
class Problem:
    """One reason not to submit."""

    setting: str
    message: str
    fix: str
    severity: Severity = "error"
    """'error' blocks rendering and submission; 'missing' (a required setting left empty) blocks submission
    only, so a dry run still shows the files; 'warning' is printed and allowed; 'note' is information (the data's
    tokens and epochs)."""

    def __str__(self) -> str:
        if self.severity == "note":
            return f"note: {self.setting}: {self.message}"
        return f"{self.severity}: {self.setting}: {self.message} (fix: {self.fix})"


Rule = Callable[[Experiment], list[Problem]]
