"""Parser throughput on a large synthetic Megatron log built from the real fixture lines.

    python benchmarks/bench_logparse.py [--mb 500] [--mix all|run|iterations ...]

Every mix repeats real lines of ``tests/fixtures/megatron-logs/`` with renumbered iterations, every third line
behind an ``srun --label`` (``0: ``) or ``torchrun --tee`` (``[default1]:``) rank prefix:

- ``all`` (default): every fixture file in turn (successes and failures, argument dumps, warnings, tracebacks),
  about 1 iteration line per 16 KB;
- ``run``: the part of one successful run after its argument dump (parameter lists, timers, memory and iteration
  lines), about 1 iteration line per 2.6 KB;
- ``iterations``: iteration and memory lines only, the worst case (a long run logging every iteration).

Prints, per mix, the size, the time of ``parse_file`` (page cache warm, so parsing is measured, not the disk)
and MB/s (10**6 bytes per second; MiB/s beside it); the requirement is >= 200 MB/s on every mix. ``parse_file``
keeps the iteration lines raw and ``LogSummary.records`` builds the records on first use: the time that takes is
printed after the MB/s (``records +X s``), then the end-to-end figure of a reader that needs every record
(``orchestrator report``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.observe.logparse import parse_file, steady_state  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests/fixtures/megatron-logs"
_ITER = re.compile(r"iteration +(\d+)/ *(\d+) \|")
_PREFIXES = ("", "0: ", "[default1]:")


def _lines(mix: str) -> tuple[list[str], list[str]]:
    """The lines written once (head) and the lines repeated (body) for a mix."""
    if mix == "all":
        body = [line for f in sorted(FIXTURES.glob("*.log")) for line in f.read_text().splitlines(keepends=True)]
        return [], body
    lines = (FIXTURES / "ok_bf16_alltoall_ep2.log").read_text().splitlines(keepends=True)
    end = next(i for i, line in enumerate(lines) if "end of arguments" in line) + 1
    head, body = lines[:end], lines[end:]
    if mix == "iterations":
        body = [line for line in body if _ITER.search(line) or "memory (MB)" in line]
    return head, body


def build(path: Path, target_mb: int, mix: str) -> int:
    """Write the synthetic log; return the number of iteration lines written."""
    head, body = _lines(mix)
    per_round = sum(1 for line in body if _ITER.search(line))
    rounds = max(1, (target_mb << 20) // sum(map(len, body)))
    total = rounds * per_round
    it = 0

    def renumber(m: re.Match[str]) -> str:
        nonlocal it
        it += 1
        return f"iteration {it:8d}/{total:8d} |"

    with open(path, "w") as fh:
        fh.writelines(head)
        for r in range(rounds):
            fh.write("".join(_PREFIXES[(r + k) % 3] + _ITER.sub(renumber, line) for k, line in enumerate(body)))
    return it


def run(mix: str, target_mb: int, path: Path, keep: bool) -> float:
    """Build the log of one mix, parse it, print the figures; return MB/s."""
    n_iter = build(path, target_mb, mix)
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:  # warm the page cache
            while fh.read(64 << 20):
                pass
        t0 = time.perf_counter()
        summary = parse_file(path)
        dt = time.perf_counter() - t0
        records = summary.records  # built on first use
        built = time.perf_counter() - t0 - dt
        assert len(records) == n_iter, (len(records), n_iter)
        ss = steady_state(records)
        print(f"mix={mix:<10} size={size / 1e6:6.0f} MB iterations={n_iter:7d} time={dt:6.2f} s -> "
              f"{size / 1e6 / dt:5.0f} MB/s ({size / 2**20 / dt:.0f} MiB/s); records +{built:.2f} s; "
              f"end to end (parse + every record) {size / 1e6 / (dt + built):5.0f} MB/s; "
              f"median {ss.median_tflops_per_gpu} TFLOP/s/GPU")
        return size / 1e6 / dt
    finally:
        if not keep:
            path.unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=500, help="size of each synthetic log in MiB (default 500)")
    ap.add_argument("--mix", nargs="+", choices=("all", "run", "iterations"), default=["all", "run", "iterations"])
    ap.add_argument("--path", default=f"/tmp/bench_megatron_{os.getpid()}.log", help="where the log is built")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic log")
    opts = ap.parse_args()
    for mix in opts.mix:
        run(mix, opts.mb, Path(opts.path), opts.keep)


if __name__ == "__main__":
    main()
