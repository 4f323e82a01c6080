"""``status --follow`` reads only what a log gained since its last poll (issue: sweeps at scale)."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest

from orchestrator.observe import status

LINE = (" [2026-11-28 13:30:29.975598] iteration {i:8d}/{n:8d} | consumed samples: {s:12d} | elapsed time per "
        "iteration (ms): 1114.6 | throughput per GPU (TFLOP/s/GPU): 408.0 | learning rate: 8.681980E-05 | global "
        "batch size:     8 | lm loss: 2.058238E+00 | loss scale: 1.0 | grad norm: 4.186 | number of skipped "
        "iterations:   0 | number of nan iterations:   0 |\n")


def iteration(i: int, n: int = 10) -> str:
    return LINE.format(i=i, n=n, s=8 * i)


@pytest.fixture
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes each ``read`` of the status module returned."""
    reads: list[int] = []

    class Counted:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def read(self, n: int = -1) -> bytes:
            data: bytes = self.handle.read(n)
            reads.append(len(data))
            return data

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

    monkeypatch.setattr(status, "open", lambda *a, **k: Counted(builtins.open(*a, **k)), raising=False)
    monkeypatch.setattr(status, "_SEEN", {})
    return reads


def test_a_poll_reads_only_what_the_log_gained(tmp_path: Path, bytes_read: list[int]) -> None:
    log = tmp_path / "job.log"
    log.write_text("start-up\n" + iteration(1) + iteration(2))
    assert status.log_progress(log) == "2/10" and bytes_read == [log.stat().st_size]
    assert status.log_progress(log) == "2/10" and bytes_read[1:] == []          # unchanged: nothing read
    with log.open("a") as handle:
        handle.write(iteration(3) + iteration(4)[:40])                         # the 4th line is half written
    assert status.log_progress(log) == "3/10" and bytes_read[1] == len(iteration(3)) + 40
    with log.open("a") as handle:
        handle.write(iteration(4)[40:] + "some other line\n")
    assert status.log_progress(log) == "4/10"
    assert bytes_read[2] == len(iteration(4)) + len("some other line\n")       # from the half line on, once
    with log.open("a") as handle:
        handle.write("no iteration here\n")
    assert status.log_progress(log) == "4/10"                                   # progress kept from before


def test_a_large_log_is_read_from_its_last_tail_bytes_first(tmp_path: Path, bytes_read: list[int],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status, "TAIL_BYTES", 4096)
    log = tmp_path / "big.log"
    log.write_text("".join(iteration(i, 500) for i in range(1, 501)))
    assert status.log_progress(log) == "500/500" and bytes_read == [4096]
