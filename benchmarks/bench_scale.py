"""Sweeps at scale on the project's real local Slurm: submit, status, status --json, cancel and report of sweeps
of 100, 1,000 and 10,000 variants, each against one ``sacct`` call over the same jobs.

    source /tmp/orchestrator-slurm/env.sh          # a running cluster (scripts/slurm/start-slurm.sh)
    python benchmarks/bench_scale.py [--sizes 100,1000,10000] [--settle 5] [--budget 1500] [--markdown FILE]

Each size is one sweep of the 3-layer proxy on one node (``training.seed`` differs per variant) whose payload exits
at once (``tests/e2e/instant``: the scheduler and the toolkit are measured, not training). Steps, each timed as the
user runs it (``python -m orchestrator ...``, wall clock, Python's start-up included; the start-up alone is printed
first):

1. ``submit --sweep FILE`` (every check, the plan, the files, one sbatch per array of up to MaxArraySize tasks);
2. after ``--settle`` seconds (a few tasks have run): ``status RUN`` (a summary above a screenful of rows),
   ``status RUN --json`` (every row: each task's own log read) and one ``sacct`` over the run's array jobs, in turn,
   ``--repeat`` rounds (the median of each is printed: this machine is noisy, and all three only read);
3. ``cancel RUN``, then ``report RUN --json`` (one row per variant).

It prints one line per step and size with the time, its ratio to that size's ``sacct`` call, and the growth from the
smallest size to each larger one (time ratio against the size ratio: linear is a growth equal to the size ratio
or less). A size whose steps pass ``--budget`` seconds in all is stopped where it is and said so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INSTANT = ROOT / "tests" / "e2e" / "instant"
BASE = ["-p", "local-slurm", "-r", "dsv3-proxy-3l", "--set", f"profile.megatron_path={INSTANT}",
        "--set", "profile.nodes=1", "--set", "training.train_iters=1"]
STEPS = ("submit", "status", "status --json", "sacct", "cancel", "report")


@dataclass
class Measured:
    """The times of one sweep size."""

    size: int
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    status_text: str = ""
    """What ``status RUN`` printed."""


def cli(cwd: Path, *args: str, timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``python -m orchestrator ARGS`` in ``cwd``; (wall seconds, the process)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return time.perf_counter() - start, proc


def timed(argv: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command (this checkout importable); (wall seconds, the process)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - start, proc


def sweep_file(directory: Path, size: int) -> Path:
    path = directory / f"scale{size}.yaml"
    path.write_text(f"name: scale{size}\nvariants:\n" +
                    "".join(f"  - {{name: v{i}, set: [training.seed={i}]}}\n" for i in range(size)))
    return path


def check(step: str, proc: subprocess.CompletedProcess[str], ok: tuple[int, ...] = (0,)) -> None:
    if proc.returncode not in ok:
        raise RuntimeError(f"{step} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-400:]}")


Timed = tuple[float, subprocess.CompletedProcess[str]]


def read_steps(work: Path, run_dir: Path, jobs: list[str], repeat: int,
               left: Callable[[], float]) -> tuple[dict[str, float], str, list[dict[str, Any]]]:
    """``status``, ``status --json`` and one ``sacct`` in turn, ``repeat`` rounds: (median seconds of each, what
    status printed first, the rows of the last status --json)."""
    sacct = ["sacct", "-X", "-P", "-n", "-o", "JobID,JobIDRaw,State,ExitCode,Elapsed,NodeList,DerivedExitCode",
             "-j", ",".join(jobs)]
    readers: dict[str, Callable[[], Timed]] = {
        "status": lambda: cli(work, "status", str(run_dir), timeout=left()),
        "status --json": lambda: cli(work, "status", str(run_dir), "--json", timeout=left()),
        "sacct": lambda: timed(sacct, timeout=left())}
    times: dict[str, list[float]] = {step: [] for step in readers}
    printed: dict[str, list[str]] = {step: [] for step in readers}
    for _round in range(max(1, repeat)):
        for step, read in readers.items():
            seconds, proc = read()
            check(step, proc)
            times[step].append(seconds)
            printed[step].append(proc.stdout)
    medians = {step: statistics.median(values) for step, values in times.items()}
    return medians, printed["status"][0], json.loads(printed["status --json"][-1])


def measure(size: int, work: Path, settle: float, budget: float, repeat: int) -> Measured:
    """One sweep of ``size`` variants through every step."""
    out, started = Measured(size), time.monotonic()

    def left() -> float:
        return max(5.0, budget - (time.monotonic() - started))

    seconds, proc = cli(work, "submit", *BASE, "--sweep", str(sweep_file(work, size)), timeout=left())
    check("submit", proc)
    out.seconds["submit"] = seconds
    run_dir = max((p for p in (work / "runs").iterdir() if p.name.startswith(f"scale{size}-")),
                  key=lambda p: p.stat().st_mtime)
    jobs = [j["job_id"] for j in json.loads((run_dir / "record.json").read_text())["jobs"]]
    out.notes.append(f"{len(jobs)} array job(s)")
    time.sleep(settle)
    medians, out.status_text, rows = read_steps(work, run_dir, jobs, repeat, left)
    out.seconds.update(medians)
    done = sum(1 for r in rows if r["state"] == "COMPLETED")
    out.notes.append(f"{len(rows)} rows, {done} COMPLETED when last watched; status, status --json, sacct: "
                     f"median of {max(1, repeat)} rounds")
    for step, args in (("cancel", ["cancel", str(run_dir)]), ("report", ["report", str(run_dir), "--json"])):
        seconds, proc = cli(work, *args, timeout=left())
        check(step, proc)
        out.seconds[step] = seconds
    out.notes.append(f"report: {len(json.loads(proc.stdout))} rows")
    return out


def lines(results: list[Measured], startup: dict[str, float]) -> list[str]:
    """The figures, one line per step and size."""
    first = results[0]
    found = ["start-up (median of 5): " + "; ".join(f"`{k}` {v:.3f} s" for k, v in startup.items()), "",
             f"| step | variants | seconds | x one sacct | growth from {first.size} variants |",
             "| --- | ---: | ---: | ---: | --- |"]
    for step in STEPS:
        for m in results:
            if step not in m.seconds:
                found.append(f"| {step} | {m.size} | not measured | | |")
                continue
            value = m.seconds[step]
            ratio = value / m.seconds["sacct"] if m.seconds.get("sacct") else float("nan")
            growth = "" if m is first or step not in first.seconds else \
                f"x{value / first.seconds[step]:.1f} (size x{m.size // first.size})"
            found.append(f"| {step} | {m.size} | {value:.2f} | {ratio:.1f} | {growth} |")
    found.append("")
    found += [f"{m.size} variants: {'; '.join(m.notes)}" for m in results]
    found += ["", f"`status RUN` of the {results[-1].size}-variant sweep printed:", "", "```",
              results[-1].status_text.rstrip(), "```"]
    return found


def start_up(work: Path) -> dict[str, float]:
    """What any command pays before its work: the interpreter alone, the command group, status's imports."""
    probes = {"python -c pass": [sys.executable, "-c", "pass"],
              "python -m orchestrator --version": [sys.executable, "-m", "orchestrator", "--version"],
              "status's imports": [sys.executable, "-c", "import orchestrator.cli.status"]}
    return {name: statistics.median(timed(argv, timeout=60)[0] for _ in range(5)) for name, argv in probes.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="sweep sizes, comma-separated")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between submit and status")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of status, status --json and sacct")
    parser.add_argument("--budget", type=float, default=1500.0, help="seconds at most for one size's steps")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    if not os.environ.get("SLURM_CONF"):
        print("error: SLURM_CONF: not set (fix: source /tmp/orchestrator-slurm/env.sh after start-slurm.sh)",
              file=sys.stderr)
        return 2
    # bytecode as a pip install leaves it (this machine sets PYTHONDONTWRITEBYTECODE: every command would otherwise
    # compile the toolkit's sources again, ~20 ms of each status call)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "orchestrator")], check=True)
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        startup = start_up(work)
        for size in (int(s) for s in args.sizes.split(",")):
            try:
                results.append(measure(size, work, args.settle, args.budget, args.repeat))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"{size} variants: stopped: {exc}", file=sys.stderr)
                break
            print(f"{size} variants: " + ", ".join(f"{k} {v:.2f} s" for k, v in results[-1].seconds.items()),
                  flush=True)
    if not results:
        return 1
    text = "\n".join(lines(results, startup))
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
