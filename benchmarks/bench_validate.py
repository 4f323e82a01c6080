"""Time of the pre-submit validation rules (the part that must stay well under a second).

    python benchmarks/bench_validate.py [--repeat 200]

Prints the mean time of ``validate()`` and of a full render for the DeepSeek-V3 recipe on the h100 profile.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.spec.config import load_experiment  # noqa: E402
from orchestrator.submit.render import render  # noqa: E402
from orchestrator.submit.rules import validate  # noqa: E402


def mean_ms(func: object, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        func()  # type: ignore[operator]
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=200)
    n = ap.parse_args().repeat
    start = time.perf_counter()
    exp = load_experiment("h100", "deepseek-v3", ["profile.account=a"])
    load_ms = (time.perf_counter() - start) * 1000
    print(f"load profile + recipe: {load_ms:.1f} ms; validate: {mean_ms(lambda: validate(exp), n):.2f} ms; "
          f"render every file: {mean_ms(lambda: render(exp, '/runs/bench'), max(1, n // 10)):.1f} ms")


if __name__ == "__main__":
    main()
