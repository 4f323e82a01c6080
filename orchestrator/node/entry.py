"""Node entry, one per task: ``python -m orchestrator.node [--preflight] SPEC_PATH``.

Maps the launcher's task variables to torch.distributed's, binds the rank to its GPU's CPUs/memory, builds the
child environment from the job spec, applies the DeepEP fallback, runs the command as a child process (forwarding
SIGTERM/SIGUSR1/SIGUSR2/SIGINT so Slurm's pre-timeout signal reaches Megatron) and returns its exit status.
Standard library only at import time. In SPEC_PATH, ``%a`` stands for SLURM_ARRAY_TASK_ID: one sbatch script
serves every task of a job array, each task reading its own ``tasks/<chunk>_<task>/job.json``.

Under Slurm (``SLURM_PROCID`` set and ``ORCH_LAUNCHER`` not ``local``):
  RANK = SLURM_PROCID, WORLD_SIZE = SLURM_NTASKS, LOCAL_RANK = SLURM_LOCALID, GROUP_RANK = SLURM_NODEID,
  LOCAL_WORLD_SIZE = SLURM_NTASKS_PER_NODE, else this node's entry of SLURM_TASKS_PER_NODE (``2(x2)`` -> 2,2),
  MASTER_ADDR = first host of SLURM_STEP_NODELIST (else SLURM_JOB_NODELIST): rank 0 runs there,
  MASTER_PORT = 20000 + SLURM_JOB_ID % 10000 (``ORCH_MASTER_PORT`` overrides). 20000-29999 lies below Linux's
  ephemeral range (32768-60999), so no outgoing connection holds it; every task of a job derives the same port and
  concurrent jobs (array tasks have their own SLURM_JOB_ID) get different ones unless their ids differ by 10000.
  Inherited MASTER_ADDR/MASTER_PORT from the submitting shell are ignored.
Local launcher (``ORCH_LAUNCHER=local`` or no SLURM_PROCID): torchrun-style RANK, WORLD_SIZE, LOCAL_RANK,
  LOCAL_WORLD_SIZE, MASTER_ADDR (default 127.0.0.1), MASTER_PORT (default 20000 + SUBMITIT_LOCAL_JOB_ID % 10000,
  else 29500); when RANK is unset, submitit's SUBMITIT_LOCAL_GLOBALID / _LOCALID / _NTASKS; else a single rank.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

from orchestrator.node import binding as binding_mod
from orchestrator.node import jobspec

PORT_BASE = 20000
PORT_SPAN = 10000
DEFAULT_LOCAL_PORT = 29500
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)
DEEPEP_FLAGS = ("--moe-enable-deepep",)
BACKEND_FLAG = "--moe-flex-dispatcher-backend"
DISPATCHER_FLAG = "--moe-token-dispatcher-type"


# ------------------------------------------------------------------------------------------------- hostlists
def _expand_one(item: str) -> list[str]:
    """``gpu-[001-002]x[1,3]`` -> every combination, zero padding kept."""
    start = item.find("[")
    if start < 0:
        return [item]
    end = item.find("]", start)
    if end < 0:
        raise ValueError(f"unbalanced '[' in hostlist item {item!r}")
    prefix, body, rest = item[:start], item[start + 1:end], item[end + 1:]
    values: list[str] = []
    for part in body.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"bad range {part!r} in hostlist item {item!r}")
        width = len(lo)
        values.extend(f"{n:0{width}d}" for n in range(int(lo), int(hi or lo) + 1))
    return [prefix + v + tail for v in values for tail in _expand_one(rest)]


def _split_top_level(text: str) -> list[str]:
    items, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    return [i.strip() for i in items if i.strip()]


def expand_hostlist(text: str) -> list[str]:
    """Slurm hostlist -> host names: ``n[1-2]``, ``gpu-[001-004,010]``, ``a1,b[3-4]``. ValueError if malformed."""
    hosts: list[str] = []
    for item in _split_top_level(text.strip()):
        hosts.extend(_expand_one(item))
    return hosts


def first_host(nodelist: str) -> str:
    """First host of a node list; ``scontrol show hostnames`` only when the pure parser cannot read it."""
    try:
        hosts = expand_hostlist(nodelist)
    except ValueError:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             check=True).stdout
        hosts = out.split()
    if not hosts:
        raise ValueError(f"empty node list {nodelist!r}")
    return hosts[0]


def parse_tasks_per_node(text: str) -> list[int]:
    """``SLURM_TASKS_PER_NODE`` -> per-node counts: ``2(x2)`` -> [2, 2]; ``4,2(x3),1`` -> [4, 2, 2, 2, 1]."""
    counts: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not m:
            raise ValueError(f"cannot read tasks per node {text!r}")
        counts.extend([int(m.group(1))] * int(m.group(2) or 1))
    return counts


def master_port(job_id: str | int) -> int:
    """The rendezvous port of a job: 20000 + job_id % 10000 (outside the ephemeral range). The one formula: the
    local back-end passes a number derived from the run directory."""
    return PORT_BASE + int(job_id) % PORT_SPAN


# ------------------------------------------------------------------------------------------------- rank mapping
@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    master_addr: str
    master_port: int
    launcher: str           # "slurm" or "local"

    def variables(self) -> dict[str, str]:
        return {"RANK": str(self.rank), "WORLD_SIZE": str(self.world_size), "LOCAL_RANK": str(self.local_rank),
                "LOCAL_WORLD_SIZE": str(self.local_world_size), "GROUP_RANK": str(self.node_rank),
                "NODE_RANK": str(self.node_rank), "MASTER_ADDR": self.master_addr,
                "MASTER_PORT": str(self.master_port)}


def from_slurm(env: Mapping[str, str]) -> DistEnv:
    node_rank = int(env.get("SLURM_NODEID", "0"))
    if env.get("SLURM_NTASKS_PER_NODE", "").isdigit():
        local_world = int(env["SLURM_NTASKS_PER_NODE"])
    else:
        per_node = parse_tasks_per_node(env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE", "1"))
        local_world = per_node[min(node_rank, len(per_node) - 1)]
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST", "")
    port = env.get("ORCH_MASTER_PORT") or str(master_port(env.get("SLURM_JOB_ID", "0")))
    return DistEnv(rank=int(env["SLURM_PROCID"]), world_size=int(env.get("SLURM_NTASKS", "1")),
                   local_rank=int(env.get("SLURM_LOCALID", "0")), local_world_size=local_world,
                   node_rank=node_rank, master_addr=first_host(nodelist) if nodelist else "127.0.0.1",
                   master_port=int(port), launcher="slurm")


def from_local(env: Mapping[str, str]) -> DistEnv:
    if "RANK" in env:
        rank, world = int(env["RANK"]), int(env.get("WORLD_SIZE", "1"))
        local_rank = int(env.get("LOCAL_RANK", env["RANK"]))
        local_world = int(env.get("LOCAL_WORLD_SIZE", env.get("WORLD_SIZE", "1")))
    else:
        rank = int(env.get("SUBMITIT_LOCAL_GLOBALID", "0"))
        local_rank = int(env.get("SUBMITIT_LOCAL_LOCALID", str(rank)))
        world = local_world = int(env.get("SUBMITIT_LOCAL_NTASKS", "1"))
    default_port = (master_port(env["SUBMITIT_LOCAL_JOB_ID"]) if env.get("SUBMITIT_LOCAL_JOB_ID", "").isdigit()
                    else DEFAULT_LOCAL_PORT)
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, local_world_size=local_world,
                   node_rank=int(env.get("GROUP_RANK", "0")), master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
                   master_port=int(env.get("MASTER_PORT", default_port)), launcher="local")


def detect(env: Mapping[str, str]) -> DistEnv:
    if env.get("ORCH_LAUNCHER") != "local" and "SLURM_PROCID" in env:
        return from_slurm(env)
    return from_local(env)


def host_name(env: Mapping[str, str]) -> str:
    """The node's name as the scheduler knows it (several fake nodes may share one machine)."""
    return env.get("SLURMD_NODENAME") or socket.gethostname()


# ------------------------------------------------------------------------------------------------- DeepEP fallback
def flag_value(argv: Sequence[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def deepep_requested(argv: Sequence[str]) -> bool:
    """The command asks for the flex dispatcher with the DeepEP backend."""
    return any(a in DEEPEP_FLAGS for a in argv) or flag_value(argv, BACKEND_FLAG) == "deepep"


def _drop_flag(argv: list[str], flag: str, takes_value: bool) -> list[str]:
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == flag:
            skip = takes_value and i + 1 < len(argv) and not argv[i + 1].startswith("--")
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    return out


def rewrite_dispatcher(argv: Sequence[str], fallback: jobspec.DispatcherFallback) -> list[str]:
    """Drop the DeepEP flags and replace the dispatcher choice with ``fallback.to`` (alltoall by default)."""
    out = list(argv)
    for flag in DEEPEP_FLAGS:
        out = _drop_flag(out, flag, takes_value=False)
    out = _drop_flag(out, BACKEND_FLAG, takes_value=True)
    for flag in {fallback.from_[0], DISPATCHER_FLAG}:
        out = _drop_flag(out, flag, takes_value=True)
    return out + list(fallback.to)


def dispatcher_flags(argv: Sequence[str]) -> list[str]:
    """The dispatcher-related flags of a command, as written (for messages)."""
    out: list[str] = []
    for flag in (DISPATCHER_FLAG, BACKEND_FLAG):
        value = flag_value(argv, flag)
        if value is not None:
            out += [flag, value]
    return out + [a for a in argv if a in DEEPEP_FLAGS]


def deepep_warning(original: Sequence[str], rewritten: Sequence[str], reason: str) -> str:
    requested = dispatcher_flags(original)
    bar = "!" * 100
    return "\n".join([
        bar,
        jobspec.DEEPEP_FALLBACK_WARNING,
        f"WARNING:   requested: {' '.join(requested)}",
        f"WARNING:   unavailable because: {reason}",
        f"WARNING:   running instead: {' '.join(rewritten[-2:])} (the all-to-all dispatcher, slower at scale)",
        "WARNING:   throughput numbers of this run are NOT DeepEP numbers.",
        bar,
    ])


def effective_command(spec: jobspec.JobSpec, deepep_usable: bool, reason: str) -> tuple[list[str], str | None]:
    """The argv to run and, when the DeepEP fallback applied, the warning text."""
    argv = list(spec.command)
    if not deepep_requested(argv) or deepep_usable:
        return argv, None
    rewritten = rewrite_dispatcher(argv, spec.dispatcher_fallback or jobspec.DispatcherFallback())
    return rewritten, deepep_warning(argv, rewritten, reason)


# ------------------------------------------------------------------------------------------------- environment
def child_env(base: Mapping[str, str], spec: jobspec.JobSpec, dist: DistEnv) -> tuple[dict[str, str], list[str]]:
    """Environment of the command and the names of passthrough variables missing here (values are never logged)."""
    env = {k: v for k, v in base.items() if k not in ("MASTER_ADDR", "MASTER_PORT") or dist.launcher == "local"}
    env.update({k: v for k, v in spec.env.items() if k not in spec.env_passthrough})
    missing = [name for name in spec.env_passthrough if name not in base]
    for name in spec.env_passthrough:
        if name in base:
            env[name] = base[name]
    env.update(dist.variables())
    if dist.local_world_size > 1:
        env.setdefault("OMP_NUM_THREADS", "1")          # as torchrun does
    paths = [spec.megatron_path] if spec.megatron_path else []
    paths.append(str(Path(__file__).resolve().parents[2]))   # the directory holding orchestrator/: children import it
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env, missing


# ------------------------------------------------------------------------------------------------- child process
STACKS_ENV = "ORCHESTRATOR_STACKS"
"""A rank's stack file for the watchdog's SIGUSR2 (``<run dir>/stacks/rank-<N>.txt``): py-spy's dump where it is
installed, else the child's own faulthandler (the bundled entry and the CPU stand-in register it)."""


def dump_stacks(pid: int, path: str | None) -> None:
    """``py-spy dump`` of the child into ``path`` where py-spy is installed (the child's own faulthandler else)."""
    spy = shutil.which("py-spy")
    if not (spy and path):
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        subprocess.run([spy, "dump", "--pid", str(pid)], stdout=out, stderr=subprocess.STDOUT, timeout=30, check=False)


def run_child(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run the command, forwarding signals to it (SIGUSR2: stacks first); exit status (128+N: killed by signal N)."""
    child = subprocess.Popen(list(argv), env=dict(env))

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            if signum == signal.SIGUSR2:
                dump_stacks(child.pid, env.get(STACKS_ENV))
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}
    try:
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - code if code < 0 else code


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(spec: jobspec.JobSpec, environ: Mapping[str, str]) -> tuple[DistEnv, binding_mod.Binding,
                                                                          dict[str, str], list[str]]:
    """Rank mapping, binding (applied), child env and command, logging one binding line and any warnings."""
    from orchestrator.node import capabilities  # imported here: probing DeepEP imports torch

    dist = detect(environ)
    env, missing = child_env(environ, spec, dist)
    bound = binding_mod.apply(binding_mod.plan(spec.bindpcie, dist.local_rank, env))
    log(bound.line(dist.rank, host_name(environ)))
    if missing and dist.local_rank == 0:
        log(f"[orchestrator.node] rank {dist.rank}: env_passthrough not set here: {', '.join(missing)}")
    deepep = capabilities.probe_deepep() if deepep_requested(spec.command) else None
    argv, warning = effective_command(spec, deepep.usable if deepep else True, deepep.reason if deepep else "")
    if warning and (dist.local_rank == 0 or dist.rank == 0):
        log(warning)
    env["ORCH_BINDING"] = bound.summary()
    env["ORCH_DEEPEP_FALLBACK"] = "1" if warning else "0"
    return dist, bound, env, list(bound.prefix) + argv


def spec_path(pattern: str, env: Mapping[str, str]) -> str:
    """The job spec of this task: ``%a`` in the path is the array task id (one job.json per array task)."""
    if "%a" not in pattern:
        return pattern
    task = env.get("SLURM_ARRAY_TASK_ID")
    if task is None:
        raise jobspec.JobSpecError(f"{pattern} names an array task (%a) but SLURM_ARRAY_TASK_ID is not set")
    return pattern.replace("%a", task)


KEY_PACKAGES = ("torch", "megatron-core", "transformer-engine", "transformer_engine_torch", "deep_ep",
                "nvidia-resiliency-ext")


def write_packages(spec: jobspec.JobSpec, where: Path, env: Mapping[str, str]) -> None:
    """Rank 0: what the job's own interpreter has installed (``pip freeze --all``) and the key versions, into
    ``<run dir>/provenance/`` (one file per job, so segments and retries keep theirs). Never fails the job."""
    job = env.get("SLURM_JOB_ID") or "local"
    folder = where / "provenance"
    try:
        folder.mkdir(exist_ok=True)
        out = subprocess.run([spec.command[0], "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                             timeout=120, check=False, env=dict(env))
        (folder / f"pip-freeze-{job}.txt").write_text(out.stdout if out.returncode == 0 else
                                                      f"# pip freeze exited {out.returncode}: {out.stderr[-300:]}")
        lines = {name: version for line in out.stdout.splitlines() if "==" in line
                 for name, version in [line.split("==", 1)] if name.lower().replace("_", "-") in
                 {k.replace("_", "-") for k in KEY_PACKAGES}}
        (folder / f"versions-{job}.json").write_text(json.dumps({"python": spec.command[0], **lines}, indent=1))
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        log(f"[orchestrator.node] rank 0: could not record the job's packages: {exc}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.node", description=__doc__.split("\n")[0])
    parser.add_argument("--preflight", action="store_true", help="run the preflight checks instead of the command")
    parser.add_argument("spec", help="path of job.json; %%a is replaced by SLURM_ARRAY_TASK_ID")
    args = parser.parse_args(argv)
    try:
        args.spec = spec_path(args.spec, os.environ)
        spec = jobspec.load(args.spec)
    except jobspec.JobSpecError as exc:
        log(f"error: {exc}")
        return 2
    if args.preflight:
        spec = replace(spec, command=(sys.executable, "-u", "-m", "orchestrator.node.preflight",
                                      str(Path(args.spec).resolve())))
    dist, _bound, env, command = prepare(spec, os.environ)
    env[STACKS_ENV] = str(Path(args.spec).parent / "stacks" / f"rank-{dist.rank}.txt")
    listing = None
    if dist.rank == 0 and not args.preflight:   # beside the training, not before it: pip takes seconds
        listing = threading.Thread(target=write_packages, args=(spec, Path(args.spec).parent, env), daemon=True)
        listing.start()
    try:
        return run_child(command, env)
    except OSError as exc:
        log(f"error: cannot run {command[0]}: {exc.strerror}")
        return 127
    finally:
        if listing is not None:
            listing.join(timeout=120)


if __name__ == "__main__":
    sys.exit(main())
