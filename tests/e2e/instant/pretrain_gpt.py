"""A payload that exits at once (``profile.megatron_path`` = this directory), so a sweep measures the scheduler
and the toolkit, not training: each rank prints one Megatron iteration line for ``--train-iters`` and exits 0.

With ``INSTANT_SLEEP_FROM_SEED=N`` in the environment, a variant whose ``--seed`` is N or more sleeps a minute
first (a test then finds it RUNNING, to cancel it).
"""

import os
import sys
import time


def arg(name: str, default: str) -> str:
    argv = sys.argv[1:]
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else default


def main() -> int:
    seed, iters = int(arg("--seed", "0")), int(arg("--train-iters", "1"))
    sleep_from = os.environ.get("INSTANT_SLEEP_FROM_SEED")
    if sleep_from and seed >= int(sleep_from):
        time.sleep(60)
    if os.environ.get("RANK", "0") == "0":
        print(f" [instant] iteration {iters:8d}/{iters:8d} | consumed samples: {iters:10d} | elapsed time per "
              f"iteration (ms): 1.0 | learning rate: 1.000000E-04 | global batch size:     1 | lm loss: "
              f"6.900000E+00 |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
