"""Speed of the planner: configurations evaluated per second (memory of each; step time of those that fit).

    python benchmarks/bench_plan.py [--profile h100-eos] [--nodes 128] [--repeat 3]

Prints, for each repeat, how many configurations ``planner.plan`` evaluated, in how many seconds, and the rate;
then the time to the first 10,000 configurations (the goal: >= 10,000 in <= 1 s).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.estimate import from_experiment, gpu_of  # noqa: E402
from orchestrator.estimate.memory import peaks  # noqa: E402
from orchestrator.estimate.planner import candidates, plan  # noqa: E402
from orchestrator.estimate.throughput import estimate_step  # noqa: E402
from orchestrator.spec.config import load_experiment  # noqa: E402


def first_n_seconds(base, gpu, n: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds to evaluate the first n candidates exactly as ``plan`` does."""
    start, limit = time.perf_counter(), gpu.memory_gb * 0.95
    for count, (_text, s) in enumerate(candidates(base, base.gpus_per_node), 1):
        if peaks(s)[1] <= limit:
            estimate_step(s, gpu)
        if count == n:
            break
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="h100-eos")
    ap.add_argument("--recipe", default=None)
    ap.add_argument("--nodes", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exp = load_experiment(args.profile, args.recipe, [f"profile.nodes={args.nodes}", f"nodes={args.nodes}"])
    base, gpu = from_experiment(exp), gpu_of(exp)
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = plan(base, gpu)
        seconds = time.perf_counter() - start
        print(f"plan {args.profile} x {args.nodes} nodes: {result.evaluated} configurations in {seconds:.2f} s = "
              f"{result.evaluated / seconds:,.0f} configurations/s ({len(result.ranked)} fit)")
    print(f"first 10,000 configurations: {first_n_seconds(base, gpu, 10_000):.3f} s")


if __name__ == "__main__":
    main()
