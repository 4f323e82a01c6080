"""Shared test helpers: the repository root, a CLI runner, and a guard that fails a test which would submit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


@pytest.fixture
def slurm_with_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render as on a cluster whose Slurm has ``#SBATCH --segment`` (24.11): tests of what the toolkit renders must
    not depend on this machine's Slurm (22.05 refuses the option, which ``test_slurm_version`` covers)."""
    from orchestrator.submit.backends import slurm

    monkeypatch.setattr(slurm, "client_version", lambda: (24, 11, 0))


@pytest.fixture(scope="session", autouse=True)
def cpu_machine() -> Iterator[None]:
    """The tests render and run as on a machine without GPUs, wherever they run (a GPU machine included): the
    local profile's ``gpus_per_node: auto`` is then 2 CPU ranks, as the goldens and the CPU payload expect; tests
    of what GPUs change fake them (``tests/unit/spec/test_machine.py``)."""
    import os

    from orchestrator.spec import machine

    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    machine.here.cache_clear()
    yield
    if saved is None:
        del os.environ["CUDA_VISIBLE_DEVICES"]
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = saved
    machine.here.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def warm_megatron_check(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One ``megatron_check --serve`` for the whole session (Megatron imported once, not in every CLI call and
    every e2e job's rank 0): the same check and verdicts (``tests/megatron_own/test_megatron_server.py``); CLI
    subprocesses and Slurm jobs find it through the environment. Without the 3.12 environment nothing is started
    and the tests that need it fail on their own."""
    import os
    import subprocess

    from orchestrator.node import megatron_check

    python = megatron_check.megatron_python()
    if python is None or os.environ.get(megatron_check.SERVER_ENV):
        yield
        return
    path = str(tmp_path_factory.mktemp("megatron") / "check.sock")
    proc = subprocess.Popen([python, "-m", "orchestrator.node.megatron_check", "--serve", path], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    os.environ[megatron_check.SERVER_ENV] = path
    try:
        yield
    finally:
        del os.environ[megatron_check.SERVER_ENV]
        proc.kill()
        proc.wait()
