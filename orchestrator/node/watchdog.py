"""Beside a job's training step, in its batch script: notice when iterations stop.

``python -m orchestrator.node.watchdog --log LOG --pid SRUN_PID --spec JOB_JSON --factor K --startup S --floor F``
follows the job's log (only the bytes it gained). Before the first ``iteration N/ M`` line the step may take
``--startup`` seconds; after it, a new iteration line is due within ``K`` × the run's own median time between
iteration lines (Megatron's ``elapsed time per iteration`` × the iterations between two lines), and never sooner
than ``--floor`` seconds (a checkpoint save or an evaluation pauses the lines). Past that the step is hung: the
watchdog prints ``orchestrator: HUNG at iteration N on NODES`` into the log (a transient failure to the diagnosis),
writes ``hang.json`` into the run directory, sends SIGUSR2 to srun (each rank's node entry saves that rank's Python
stacks under ``<run dir>/stacks/``), then stops the step (SIGTERM, then SIGKILL). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from . import entry, jobspec, retry

ITERATION = re.compile(r" iteration\s+(\d+)/\s*\d+ \|.*?elapsed time per iteration \(ms\): ([\d.]+)")
STACKS = "stacks"
"""The run directory's folder of per-rank stack dumps (``rank-<N>.txt``)."""
STACK_WAIT_S = 15.0


@dataclass(frozen=True)
class Hang:
    """What the watchdog saw when it called the step hung (``hang.json``)."""

    iteration: int | None
    """The last iteration logged (None: none before the start-up allowance ran out)."""
    nodes: list[str]
    waited_s: float
    """Seconds without a new iteration line."""
    allowed_s: float
    """What was allowed: ``factor`` × ``median_s`` (at least the floor), or the start-up allowance."""
    median_s: float | None
    """The run's median seconds between iteration lines."""
    job: str


class Progress:
    """The iteration lines of a growing log, read incrementally."""

    def __init__(self, path: str) -> None:
        """From the log's current end: a requeued job appends to its log, and an earlier attempt's lines are not
        this attempt's progress."""
        try:
            start = os.path.getsize(path)
        except OSError:
            start = 0
        self.path, self.offset, self.partial = path, start, b""
        self.last: int | None = None
        self.gaps: list[float] = []

    def poll(self) -> bool:
        """Read what the log gained; True when a new iteration line came."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return False
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        new = False
        for raw in lines:
            if m := ITERATION.search(raw.decode("utf-8", "replace")):
                iteration, ms = int(m[1]), float(m[2])
                step = iteration - self.last if self.last is not None and iteration > self.last else 1
                self.gaps.append(ms / 1000.0 * step)
                self.last, new = iteration, True
        return new

    def allowed(self, factor: float, floor: float, startup: float) -> tuple[float, float | None]:
        if self.last is None:
            return startup, None
        median = statistics.median(self.gaps[-50:])
        return max(floor, factor * median), median


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def stop(pid: int, run_dir: Path, hang: Hang) -> None:
    """Say it, record it, ask for the stacks, then end the step."""
    where = ",".join(hang.nodes) or "?"
    print(f"orchestrator: HUNG at iteration {hang.iteration if hang.iteration is not None else 0} on {where}: "
          f"no new iteration for {hang.waited_s:.0f} s (allowed {hang.allowed_s:.1f} s); stacks in "
          f"{run_dir / STACKS}", flush=True)
    (run_dir / STACKS).mkdir(exist_ok=True)
    (run_dir / "hang.json").write_text(json.dumps(asdict(hang), indent=1) + "\n")
    written = _stack_bytes(run_dir)   # a rank's file exists once its faulthandler is registered: watch it grow
    _signal(pid, signal.SIGUSR2)
    _wait_while(lambda: _alive(pid) and _stack_bytes(run_dir) == written, STACK_WAIT_S)
    _wait_while(lambda: _alive(pid), 1.0)   # the other ranks' dumps land within moments of the first
    for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 5.0)):
        _signal(pid, sig)
        _wait_while(lambda: _alive(pid), wait_s)


def _stack_bytes(run_dir: Path) -> int:
    return sum(p.stat().st_size for p in (run_dir / STACKS).glob("rank-*"))


def _wait_while(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and condition():
        time.sleep(0.25)


def watch(log: str, pid: int, run_dir: Path, factor: float, floor: float, startup: float, poll_s: float,
          env: Mapping[str, str]) -> Hang | None:
    """Follow the log until the step ends (None) or hangs (the Hang, after stopping it)."""
    progress, seen = Progress(log), time.monotonic()
    while _alive(pid):
        if progress.poll():
            seen = time.monotonic()
        allowed, median = progress.allowed(factor, floor, startup)
        waited = time.monotonic() - seen
        if waited > allowed:
            hang = Hang(progress.last, entry.expand_hostlist(env.get("SLURM_JOB_NODELIST", "")), round(waited, 1),
                        round(allowed, 2), None if median is None else round(median, 4), env.get("SLURM_JOB_ID", ""))
            stop(pid, run_dir, hang)
            return hang
        time.sleep(poll_s)
    return None


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    p = argparse.ArgumentParser(prog="python -m orchestrator.node.watchdog", description=__doc__.splitlines()[0])
    p.add_argument("--log", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--spec", required=True, help="job.json (%%a: the array task): its folder is the run directory")
    p.add_argument("--factor", type=float, required=True)
    p.add_argument("--floor", type=float, required=True)
    p.add_argument("--startup", type=float, required=True)
    p.add_argument("--poll", type=float, default=1.0)
    a = p.parse_args(argv)
    try:
        run_dir = Path(entry.spec_path(a.spec, env)).parent
    except jobspec.JobSpecError as exc:
        print(f"orchestrator: error: {exc} (no hang detection for this step)", file=sys.stderr, flush=True)
        return 2
    watch(retry.expand_log(a.log, env), a.pid, run_dir, a.factor, a.floor, a.startup, a.poll, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
