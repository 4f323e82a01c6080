"""Shared test helpers: the repository root, a CLI runner, and a guard that fails a test which would submit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.submit import run_records
from orchestrator.submit.backends import local_executor, slurm_executor

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def forbid_submission(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``forbid_submission(why, *more)``: any sbatch or local submission, or a run directory claimed, fails the test
    with ``why``; ``more`` are further ``(object, attribute)`` pairs that must not be called either."""
    def forbid(why: str, *more: tuple[Any, str]) -> None:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise AssertionError(why)
        for target, name in ((slurm_executor.TemplateSlurmExecutor, "submit_script"),
                             (local_executor.ScriptLocalExecutor, "submit_script"),
                             (local_executor.ScriptLocalExecutor, "submit_tasks"), (run_records, "claim"), *more):
            monkeypatch.setattr(target, name, refuse)
    return forbid
