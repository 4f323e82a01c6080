"""The GPUs of this machine, counted (not assumed): what ``gpus_per_node: auto`` and ``gpu: auto`` of the local
profile resolve to. Standard library only.

Counted from ``CUDA_VISIBLE_DEVICES`` where it is set (the GPUs this process may use), else ``nvidia-smi``; names
and memory from ``nvidia-smi``. A machine without a driver has none.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .gpus import GPUS

RunFn = Callable[[Sequence[str]], str | None]

CPU_RANKS = 2
"""Ranks of a local run where no GPU is found: two CPU processes, so the rendezvous and all-reduce are real."""

AUTO = "auto"


@dataclass(frozen=True)
class LocalGpus:
    """The GPUs this machine offers a local run."""

    count: int
    """GPUs visible to this process."""
    name: str | None
    """The first GPU's name as ``nvidia-smi`` gives it (``NVIDIA H200``), None where none answers."""
    memory_gb: float | None
    """Its memory, GB of 10**9 bytes."""
    source: str
    """Where the count came from, for messages (``nvidia-smi``, ``CUDA_VISIBLE_DEVICES=0,1``)."""

    @property
    def gpu_type(self) -> str | None:
        """The GPU table's key for this GPU (``h200``), None where the table has no such GPU."""
        return gpu_type(self.name)

    def describe(self) -> str:
        if not self.count:
            return f"no GPU found ({self.source})"
        memory = f" {self.memory_gb:.0f} GB" if self.memory_gb else ""
        return f"{self.count} x {self.name or 'GPU'}{memory}"


def gpu_type(name: str | None) -> str | None:
    """``NVIDIA H200`` → ``h200``; the longest table key in the name wins (``GB200`` is not a ``B200``)."""
    if not name:
        return None
    upper = name.upper()
    found = [key for key in GPUS if key.upper() in upper]
    return max(found, key=len) if found else None


def _run(argv: Sequence[str]) -> str | None:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def count(env: Mapping[str, str], run: RunFn = _run) -> LocalGpus:
    """This machine's GPUs as a local run would see them."""
    listed = run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
    rows = [[c.strip() for c in line.split(",")] for line in (listed or "").splitlines() if line.strip()]
    name, memory = (rows[0][0], float(rows[0][1]) * 2**20 / 1e9) if rows and len(rows[0]) == 2 and \
        rows[0][1].replace(".", "", 1).isdigit() else (None, None)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v for v in visible.split(",") if v.strip() and not v.strip().startswith("-")]
        return LocalGpus(min(len(ids), len(rows)) if rows else 0, name, memory, f"CUDA_VISIBLE_DEVICES={visible}")
    return LocalGpus(len(rows), name, memory, "nvidia-smi" if listed is not None else "nvidia-smi did not answer")


@functools.lru_cache(maxsize=1)
def here() -> LocalGpus:
    """``count`` of this process's environment, asked once per process."""
    return count(os.environ)


def resolve(profile: dict[str, object]) -> dict[str, object]:
    """A raw profile with ``gpus_per_node: auto`` and ``gpu: auto`` replaced by what this machine has (the local
    scheduler only: a Slurm job's nodes are not this machine). Raises ValueError naming the setting otherwise."""
    wants = [k for k in ("gpus_per_node", "gpu") if profile.get(k) == AUTO]
    if not wants:
        return profile
    if profile.get("scheduler", "slurm") != "local":
        raise ValueError(f"{wants[0]}")
    found = here()
    out = dict(profile)
    if "gpus_per_node" in wants:
        out["gpus_per_node"] = found.count or CPU_RANKS
    if "gpu" in wants:
        out["gpu"] = found.gpu_type
    return out
