"""CPU / memory binding of one rank to the GPU it drives. Standard library only.

Two ways, chosen by the job spec:

* ``bindpcie`` set: the command is prefixed with NVIDIA's ``bindpcie`` wrapper (mlperf-common). It reads the rank's
  local index from ``LOCAL_RANK`` (else ``SLURM_LOCALID``), assumes one rank per GPU with GPU index == local rank,
  asks ``nvidia-smi``/``lscpu`` for the topology and execs ``numactl --cpunodebind=N --membind=N -- COMMAND``.
  The node entry exports ``LOCAL_RANK`` before running it. Where bindpcie or the numactl it execs is not on the
  node (the rank would exit 127), the built-in binding is used instead and the line says why (preflight too).
* otherwise the built-in fallback here: find the GPU of the local rank (``CUDA_VISIBLE_DEVICES`` entry, else the
  local rank), its PCI address (``nvidia-smi --query-gpu=pci.bus_id``, else ``/proc/driver/nvidia/gpus/*``),
  its NUMA node and CPUs (``/sys/bus/pci/devices/<bdf>/numa_node``, ``local_cpulist``); bind CPUs with
  ``os.sched_setaffinity`` (inherited by the child) and memory with a ``numactl --membind=N`` prefix when numactl
  exists. On a machine without GPUs nothing is bound and the log line says so.

Every rank logs exactly one line (``Binding.line``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

RunFn = Callable[[Sequence[str]], str | None]   # runs a command, returns stdout or None when it fails


@dataclass(frozen=True)
class Binding:
    """What one rank was bound to."""

    local_rank: int
    gpu_index: int | None = None          # physical GPU index (nvidia-smi numbering)
    bus_id: str | None = None             # sysfs form, e.g. "0000:3b:00.0"
    numa_node: int | None = None
    cpus: tuple[int, ...] = ()
    prefix: tuple[str, ...] = ()          # argv put in front of the command (numactl ... / bindpcie ...)
    method: Literal["builtin", "bindpcie", "none"] = "none"
    note: str = ""                        # why something was not bound

    def summary(self) -> str:
        if self.method == "bindpcie":
            return f"bindpcie ({shlex.join(self.prefix)}) binds local rank {self.local_rank} to GPU {self.local_rank}"
        if self.gpu_index is None:
            return f"{self.note}; running unbound"
        parts = [f"GPU {self.gpu_index}" + (f" {self.bus_id}" if self.bus_id else "")]
        parts.append(f"NUMA node {self.numa_node}" if self.numa_node is not None else "NUMA node unknown")
        parts.append(f"cpus {format_cpulist(self.cpus)}" if self.cpus else "cpus unbound")
        parts.append(f"memory {' '.join(self.prefix[1:])}" if self.prefix else "memory unbound")
        if self.note:
            parts.append(f"({self.note})")
        return ", ".join(parts)

    def line(self, rank: int, host: str) -> str:
        return f"[orchestrator.bind] rank {rank} host {host} local_rank {self.local_rank}: {self.summary()}"

    def to_json(self) -> dict[str, object]:
        return {"method": self.method, "gpu": self.gpu_index, "bus_id": self.bus_id, "numa_node": self.numa_node,
                "cpus": format_cpulist(self.cpus), "prefix": list(self.prefix), "summary": self.summary()}


# ------------------------------------------------------------------------------------------------- pure helpers
def parse_cpulist(text: str) -> tuple[int, ...]:
    """``"0-3,8,10-11"`` -> (0, 1, 2, 3, 8, 10, 11)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part.strip():
            continue
        lo, _, hi = part.strip().partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return tuple(sorted(cpus))


def format_cpulist(cpus: Sequence[int]) -> str:
    """(0, 1, 2, 3, 8) -> ``"0-3,8"``."""
    out: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def normalize_bus_id(bus_id: str) -> str:
    """nvidia-smi's ``00000000:3B:00.0`` -> sysfs ``0000:3b:00.0``."""
    bus_id = bus_id.strip().lower()
    domain, sep, rest = bus_id.partition(":")
    if sep and len(domain) > 4:
        domain = domain[-4:]
    return f"{domain}{sep}{rest}"


def gpu_for_local_rank(local_rank: int, visible: str | None) -> int:
    """Physical GPU index of a rank: its entry in CUDA_VISIBLE_DEVICES when that lists integers, else local rank."""
    if visible:
        entries = [v.strip() for v in visible.split(",") if v.strip()]
        if entries and all(v.isdigit() for v in entries):
            return int(entries[local_rank % len(entries)])
    return local_rank


# ------------------------------------------------------------------------------------------------- discovery
def _run(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def gpu_bus_ids(run: RunFn = _run, proc_root: Path = Path("/proc")) -> tuple[list[str], str]:
    """PCI addresses of the node's GPUs in nvidia-smi order, and where they came from (or why none)."""
    out = run(["nvidia-smi", "--query-gpu=pci.bus_id", "--format=csv,noheader"])
    if out is not None:
        ids = [normalize_bus_id(line) for line in out.splitlines() if line.strip()]
        if ids:
            return ids, "nvidia-smi"
    gpus_dir = proc_root / "driver" / "nvidia" / "gpus"
    if gpus_dir.is_dir():
        ids = sorted(normalize_bus_id(p.name) for p in gpus_dir.iterdir())
        if ids:
            return ids, str(gpus_dir)
    return [], f"no GPUs on this node (no nvidia-smi output, no {gpus_dir})"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def pci_locality(bus_id: str, sys_root: Path = Path("/sys")) -> tuple[int | None, tuple[int, ...]]:
    """NUMA node (None if unknown / -1) and local CPUs of a PCI device."""
    dev = sys_root / "bus" / "pci" / "devices" / bus_id
    node_text = _read(dev / "numa_node")
    node = int(node_text) if node_text and node_text.lstrip("-").isdigit() and int(node_text) >= 0 else None
    cpulist = _read(dev / "local_cpulist")
    return node, parse_cpulist(cpulist) if cpulist else ()


# ------------------------------------------------------------------------------------------------- planning
def plan_bindpcie(bindpcie: str, local_rank: int) -> Binding:
    prefix = tuple(shlex.split(bindpcie)) + ("--",)
    return Binding(local_rank=local_rank, prefix=prefix, method="bindpcie")


def plan_builtin(local_rank: int, env: Mapping[str, str], allowed_cpus: Sequence[int], run: RunFn = _run,
                 proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys"),
                 numactl: str | None = None) -> Binding:
    """Decide the binding of one rank (no side effects)."""
    bus_ids, source = gpu_bus_ids(run, proc_root)
    if not bus_ids:
        return Binding(local_rank=local_rank, note=source)
    index = gpu_for_local_rank(local_rank, env.get("CUDA_VISIBLE_DEVICES"))
    if index >= len(bus_ids):
        return Binding(local_rank=local_rank,
                       note=f"no GPU bound: local rank {local_rank} wants GPU {index}, this node has {len(bus_ids)}")
    bus_id = bus_ids[index]
    node, local_cpus = pci_locality(bus_id, sys_root)
    cpus = tuple(c for c in local_cpus if c in set(allowed_cpus))
    notes = []
    if local_cpus and not cpus:
        notes.append("GPU-local CPUs outside this task's allowed CPUs")
    prefix: tuple[str, ...] = ()
    if node is not None and numactl:
        prefix = (numactl, f"--membind={node}")
    elif node is not None:
        notes.append("numactl not found")
    return Binding(local_rank=local_rank, gpu_index=index, bus_id=bus_id, numa_node=node, cpus=cpus,
                   prefix=prefix, method="builtin", note="; ".join(notes))


def bindpcie_lacks(bindpcie: str, which: Callable[[str], str | None] = shutil.which) -> str:
    """What a configured bindpcie needs and this node lacks ('' when nothing): the wrapper itself, and the
    ``numactl`` it execs."""
    words = shlex.split(bindpcie)
    if not words or which(words[0]) is None:
        return f"bindpcie not found ({bindpcie!r})"
    return "" if which("numactl") else "numactl not found (bindpcie execs it; install the numactl package)"


def plan(bindpcie: str | None, local_rank: int, env: Mapping[str, str],
         which: Callable[[str], str | None] = shutil.which) -> Binding:
    """bindpcie where configured and runnable here, else the built-in binding (with why bindpcie was not used)."""
    lacking = bindpcie_lacks(bindpcie, which) if bindpcie else ""
    if bindpcie and not lacking:
        return plan_bindpcie(bindpcie, local_rank)
    found = plan_builtin(local_rank, env, sorted(os.sched_getaffinity(0)), numactl=which("numactl"))
    if not lacking:
        return found
    return replace(found, note="; ".join(n for n in (f"{lacking}: built-in binding instead", found.note) if n))


def apply(binding: Binding) -> Binding:
    """Bind this process's CPUs (the child inherits them); returns the binding, with a note if that failed."""
    if binding.method != "builtin" or not binding.cpus:
        return binding
    try:
        os.sched_setaffinity(0, binding.cpus)
    except OSError as exc:
        return replace(binding, cpus=(), note=f"sched_setaffinity failed: {exc.strerror}")
    return binding
