"""Start-up timing of the bundled training entry: when the process started, named marks since then, and a hook
that fires once after the first training step. Standard library only."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Callable, ParamSpec, TypeVar

PREFIX = "orchestrator.train"
P = ParamSpec("P")
R = TypeVar("R")


def process_start_time(fallback: float) -> float:
    """Wall-clock time this process started (Linux /proc), else ``fallback``."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return fallback
    started = time.time() - max(age, 0.0)
    return min(started, fallback)


@dataclass
class StartupClock:
    """Named timestamps since the process started."""

    start: float
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> float:
        self.marks[name] = time.time()
        return self.marks[name] - self.start

    def span(self, first: str | None, last: str) -> float:
        begin = self.start if first is None else self.marks[first]
        return self.marks[last] - begin

    def first_iteration_line(self) -> str:
        return (
            f"{PREFIX}: first iteration after {self.span(None, 'first_iteration'):.1f} s "
            f"(imports {self.span(None, 'imported'):.1f} s, "
            f"init {self.span('imported', 'model_start'):.1f} s, "
            f"model build {self.span('model_start', 'model_built'):.1f} s)"
        )

    def rest_line(self) -> str:
        return (
            f"{PREFIX}: optimizer + data setup + iteration 1 took "
            f"{self.span('model_built', 'first_iteration'):.1f} s"
        )


def call_once_after(fn: Callable[P, R], after_first: Callable[[], None]) -> Callable[P, R]:
    """Wrap ``fn`` so that ``after_first`` runs once, after its first call returns."""
    done = False

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal done
        result = fn(*args, **kwargs)
        if not done:
            done = True
            after_first()
        return result

    return wrapper
