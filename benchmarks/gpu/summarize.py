"""Summarise a Megatron training log: per-iteration TFLOP/s/GPU, the median over iterations >= 3,
peak memory, and the ``orchestrator.train`` startup lines. Standard library only.

Usage: python3 benchmarks/gpu/summarize.py LOG [--from-iteration 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ITERATION = re.compile(
    r"iteration\s+(?P<it>\d+)/\s*(?P<total>\d+) \|.*?elapsed time per iteration \(ms\): (?P<ms>[\d.]+)"
    r".*?throughput per GPU \(TFLOP/s/GPU\): (?P<tflops>[\d.]+)"
)
MEMORY = re.compile(r"\[Rank (?P<rank>\d+)\].*?max allocated: (?P<mb>[\d.]+)")


@dataclass(frozen=True)
class Iteration:
    number: int
    total: int
    ms: float
    tflops: float


def iterations(lines: list[str]) -> list[Iteration]:
    found = (ITERATION.search(line) for line in lines)
    return [
        Iteration(int(m["it"]), int(m["total"]), float(m["ms"]), float(m["tflops"])) for m in found if m
    ]


def summary(lines: list[str], first: int) -> list[str]:
    out = [line.strip() for line in lines if line.startswith("orchestrator.train:")]
    its = iterations(lines)
    for it in its:
        out.append(f"iteration {it.number}/{it.total}: {it.ms:.1f} ms, {it.tflops:.1f} TFLOP/s/GPU")
    steady = [it for it in its if it.number >= first]
    if steady:
        out.append(
            f"median over iterations >= {first} ({len(steady)}): "
            f"{statistics.median(it.tflops for it in steady):.1f} TFLOP/s/GPU, "
            f"{statistics.median(it.ms for it in steady):.1f} ms/iteration"
        )
    else:
        out.append(f"no iteration >= {first} in the log")
    peaks = [float(m["mb"]) for m in (MEMORY.search(line) for line in lines) if m]
    if peaks:
        out.append(f"max allocated (rank-0 reports): {max(peaks) * 2**20 / 1e9:.1f} GB ({max(peaks) / 1024:.1f} GiB)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--from-iteration", type=int, default=3)
    opts = parser.parse_args(argv)
    lines = opts.log.read_text(errors="replace").splitlines()
    print("\n".join(summary(lines, opts.from_iteration)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
