"""The warm check process (``megatron_check --serve``): the same verdicts as a fresh interpreter, each request in a
child of its own, and a caller that falls back to the interpreter where the server does not answer."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.node import megatron_check
from orchestrator.spec.config import load_experiment
from orchestrator.submit import checks

ROOT = Path(__file__).parents[2]


def jobs() -> list[dict[str, Any]]:
    """An accepted launch, the same without --save-interval (Megatron refuses it), and the accepted one again."""
    good = checks.harness_jobs([load_experiment("local-slurm", "dsv3-proxy-3l", [])])[0]
    bad = {**good, "argv": list(good["argv"])}
    at = bad["argv"].index("--save-interval")
    bad["argv"][at:at + 2] = []
    return [good, bad, good]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    python = checks.megatron_python()
    if python is None:
        pytest.fail(f"no Python >= 3.12 with megatron.training: {checks.HOW_TO_GET_IT}")
    path = str(tmp_path / "check.sock")
    proc = subprocess.Popen([python, "-m", "orchestrator.node.megatron_check", "--serve", path], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and '"serving"' in proc.stdout.readline()
    yield path
    proc.kill()
    proc.wait()


def test_the_server_gives_the_interpreters_verdicts(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    python = checks.megatron_python()
    assert python is not None
    monkeypatch.delenv(megatron_check.SERVER_ENV, raising=False)
    fresh = megatron_check.run_jobs(python, jobs())
    monkeypatch.setenv(megatron_check.SERVER_ENV, server)
    served = megatron_check.ask_server(jobs(), 120)
    assert served is not None and not isinstance(fresh, str)
    assert [(r["ok"], r["failed_at"]) for r in served] == [(True, None), (False, "assert args.save_interval is not None"),
                                                          (True, None)]
    assert served == fresh
    assert megatron_check.ask_server(jobs()[:1], 120) == fresh[:1]   # a second request: a new child, same answer


def test_a_server_that_does_not_answer_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = checks.megatron_python()
    assert python is not None
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(dead))   # a socket nobody listens on
    monkeypatch.setenv(megatron_check.SERVER_ENV, str(dead))
    assert megatron_check.ask_server(jobs()[:1], 5) is None
    results = megatron_check.run_jobs(python, jobs()[1:2])
    assert not isinstance(results, str) and results[0]["failed_at"] == "assert args.save_interval is not None"
