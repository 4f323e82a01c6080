"""The preflight payload, run per rank by ``python -m orchestrator.node --preflight SPEC``.

The node entry has already mapped the task variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT ...)
and bound the rank; it runs ``python -m orchestrator.node.preflight SPEC`` as its child. Each rank then

1. joins a real torch.distributed group (NCCL when this node has usable GPUs, else gloo on CPU),
2. all-reduces ``rank + 1`` and checks the sum equals n(n+1)/2; gathers every rank's host name,
3. checks the GPUs: on a node with an NVIDIA driver torch must see at least LOCAL_WORLD_SIZE devices,
4. on rank 0, where ``megatron.training`` is importable, runs Megatron's own ``parse_args`` + ``validate_args`` on
   the spec's Megatron arguments (after the DeepEP fallback) with this world size and reports what it rejects;
   otherwise reports "megatron.training not importable here (megatron-core X)" (megatron-core <= 0.16.1, the last
   release for Python 3.11, has no megatron.training: that check then runs on the GPU machines),
5. writes its report as JSON to ``<run dir>/preflight/rank-<RANK>.json`` (atomically: the run directory is on the
   shared filesystem submitit needs anyway), prints it as ONE line (key ``"preflight"``) for the log, and exits 1
   if any check failed. ``orchestrator preflight`` reads the files: lines of several ranks sharing one log file
   can be cut or lost (a 4-rank run on two nodes lost one rank's line in CI), a file cannot.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.node import binding, capabilities, entry, jobspec, megatron_check

REPORT_DIR = "preflight"
RENDEZVOUS_TIMEOUT_S = int(os.environ.get("ORCH_PREFLIGHT_TIMEOUT_S", "120"))


def megatron_arguments(command: Sequence[str]) -> list[str]:
    """The Megatron arguments of a command: what follows ``-m MODULE`` or ``SCRIPT.py``, else the first ``--flag``."""
    argv = list(command)
    for i, arg in enumerate(argv):
        if arg == "-m" and i + 1 < len(argv):
            return argv[i + 2:]
        if arg.endswith(".py"):
            return argv[i + 1:]
    for i, arg in enumerate(argv):
        if arg.startswith("--"):
            return argv[i:]
    return []


def expected_sum(world_size: int) -> int:
    return world_size * (world_size + 1) // 2


def nvidia_driver_present() -> bool:
    return Path("/proc/driver/nvidia/gpus").is_dir() or Path("/dev/nvidiactl").exists()


def check_gpus(torch: Any, local_world_size: int) -> dict[str, Any]:
    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    report: dict[str, Any] = {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "torch_devices": found}
    if not nvidia_driver_present():
        report.update(ok=True, note="no NVIDIA driver on this node: checks ran on CPU (gloo)")
    elif found < local_world_size:
        report.update(ok=False, note=f"{local_world_size} rank(s) on this node but torch sees {found} GPU(s)")
    else:
        report.update(ok=True)
    return report


def allreduce_check(torch: Any, dist_env: entry.DistEnv, use_cuda: bool) -> dict[str, Any]:
    """Join the group, all-reduce rank+1, gather host names; never raises."""
    import torch.distributed as dist

    backend = "nccl" if use_cuda else "gloo"
    report: dict[str, Any] = {"backend": backend, "master": f"{dist_env.master_addr}:{dist_env.master_port}"}
    try:
        if use_cuda:
            torch.cuda.set_device(dist_env.local_rank)
        dist.init_process_group(backend=backend, init_method="env://",
                                timeout=datetime.timedelta(seconds=RENDEZVOUS_TIMEOUT_S))
        value = torch.tensor([float(dist_env.rank + 1)], device="cuda" if use_cuda else "cpu")
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        hosts: list[Any] = [None] * dist_env.world_size
        dist.all_gather_object(hosts, entry.host_name(os.environ))
        dist.barrier()
        dist.destroy_process_group()
    except Exception as exc:  # noqa: BLE001 - a failed rendezvous is a reported check, not a crash
        report.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        return report
    total = int(value.item())
    want = expected_sum(dist_env.world_size)
    report.update(ok=total == want, sum=total, expected=want, hosts=hosts)
    return report


def validate_megatron_args(args: list[str], training: capabilities.Capability) -> dict[str, Any]:
    """Megatron's own argument check (``megatron_check.check``, the harness validate uses) on ``args``;
    {"checked", "ok", "message"}."""
    if not training.usable:
        return {"checked": False, "ok": None, "message": training.reason}
    result = megatron_check.check(args)
    if not result["ok"]:
        return {"checked": True, "ok": False, "message": result["error"]}
    return {"checked": True, "ok": True, "message": "accepted by megatron.training.arguments.validate_args"}


def dispatcher_report(spec: jobspec.JobSpec, deepep: capabilities.Capability) -> tuple[list[str], str]:
    command, warning = entry.effective_command(spec, deepep.usable, deepep.reason)
    if warning:
        return command, f"DeepEP requested but unusable ({deepep.reason}): falls back to {' '.join(command[-2:])}"
    return command, "as requested"


def report_path(spec_path: str, rank: int) -> Path:
    """Where rank ``rank`` writes its report: ``preflight/rank-N.json`` next to the job's job.json."""
    return Path(spec_path).resolve().parent / REPORT_DIR / f"rank-{rank}.json"


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` whole or not at all (a reader never sees half a file); a failure is logged, not raised."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(report) + "\n")
        os.replace(partial, path)
    except OSError as exc:
        print(f"orchestrator.node.preflight: cannot write {path}: {exc.strerror}; the log line stays",
              file=sys.stderr, flush=True)


def lacks(spec: jobspec.JobSpec, caps: dict[str, capabilities.Capability]) -> list[str]:
    """What this node lacks for the job: to train (``capabilities.missing``), and what its configured bindpcie
    needs (``numactl``)."""
    found = capabilities.missing(caps, entry.deepep_requested(spec.command))
    if spec.bindpcie and (why := binding.bindpcie_lacks(spec.bindpcie)):
        found.append(f"bindpcie (profile.bindpcie_path): {why}; the ranks used the built-in binding")
    return found


def run(spec_path: str) -> int:
    import torch

    spec = jobspec.load(spec_path)
    dist_env = entry.detect(os.environ)
    caps = capabilities.probe_all()
    use_cuda = torch.cuda.is_available() and torch.cuda.device_count() > 0
    gpus = check_gpus(torch, dist_env.local_world_size)
    allreduce = allreduce_check(torch, dist_env, use_cuda)
    command, dispatcher = dispatcher_report(spec, caps["deep_ep"])
    if dist_env.rank == 0:
        margs = validate_megatron_args(megatron_arguments(command), caps["megatron.training"])
    else:
        margs = {"checked": False, "ok": None, "message": "checked on rank 0"}
    ok = bool(allreduce.get("ok")) and bool(gpus.get("ok")) and margs["ok"] is not False
    report = {
        "preflight": spec.name, "ok": ok, "rank": dist_env.rank, "world_size": dist_env.world_size,
        "local_rank": dist_env.local_rank, "host": entry.host_name(os.environ), "launcher": dist_env.launcher,
        "binding": os.environ.get("ORCH_BINDING", "unknown"), "gpus": gpus,
        "versions": capabilities.version_report(caps), "allreduce": allreduce, "dispatcher": dispatcher,
        "megatron_args": margs, "lacks": lacks(spec, caps),
    }
    write_report(report_path(spec_path, dist_env.rank), report)
    # one write() for the line and its newline: under `python -u` print() writes them apart, and the ranks that
    # share a log file then interleave ('{...}{...}\n\n', seen in CI)
    sys.stdout.write(json.dumps(report, sort_keys=False) + "\n")
    sys.stdout.flush()
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m orchestrator.node.preflight SPEC_PATH (normally run by orchestrator.node --preflight)",
              file=sys.stderr)
        return 2
    return run(args[0])


if __name__ == "__main__":
    sys.exit(main())
