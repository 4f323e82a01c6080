"""The one table of GPU types: memory, dense peak rates, memory and link bandwidths.

Peak rates are the vendors' dense (no sparsity) figures for the SXM/NVL parts; memory is what ``torch`` reports as
the device's total, in GB of 10**9 bytes (an "80 GB" H100 has 85.0 GB of 10**9 bytes). Bandwidths are per GPU and
per direction. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuSpec:
    """One GPU type."""

    name: str
    """Key used by profiles (``gpu: h100``)."""
    memory_gb: float
    """Device memory, GB of 10**9 bytes, as torch's ``total_memory`` reports it."""
    bf16_tflops: float
    """Dense BF16 tensor-core peak, TFLOP/s."""
    fp8_tflops: float
    """Dense FP8 tensor-core peak, TFLOP/s (0: no FP8)."""
    hbm_tb_s: float
    """Memory bandwidth, TB/s."""
    nvlink_gb_s: float
    """NVLink bandwidth per GPU and direction, GB/s."""
    network_gb_s: float
    """Scale-out network (InfiniBand/RoCE) bandwidth per GPU and direction, GB/s."""
    nvlink_domain: int
    """GPUs that share one NVLink domain (8 in a DGX node, 72 in a GB200 NVL72 rack)."""
    capability: tuple[int, int]
    """CUDA compute capability (what ``torch.cuda.get_device_capability`` answers; Megatron's argument check asks)."""
    label: str
    """The device name torch reports, e.g. ``NVIDIA H100 80GB HBM3``."""


GPUS: dict[str, GpuSpec] = {g.name: g for g in (
    GpuSpec("a100", 85.1, 312.0, 0.0, 2.04, 300.0, 25.0, 8, (8, 0), "NVIDIA A100-SXM4-80GB"),
    GpuSpec("h100", 85.0, 989.0, 1979.0, 3.35, 450.0, 50.0, 8, (9, 0), "NVIDIA H100 80GB HBM3"),
    GpuSpec("h200", 150.8, 989.0, 1979.0, 4.8, 450.0, 50.0, 8, (9, 0), "NVIDIA H200"),
    GpuSpec("b200", 191.5, 2250.0, 4500.0, 8.0, 900.0, 50.0, 8, (10, 0), "NVIDIA B200"),
    GpuSpec("gb200", 197.0, 2500.0, 5000.0, 8.0, 900.0, 50.0, 72, (10, 0), "NVIDIA GB200"),
)}
"""Known GPU types by name."""


class UnknownGpu(KeyError):
    """A GPU name the table does not hold."""


def get(name: str) -> GpuSpec:
    """The spec of a GPU type (case-insensitive), or ``UnknownGpu`` naming the known ones."""
    spec = GPUS.get(name.lower())
    if spec is None:
        raise UnknownGpu(f"unknown GPU type {name!r} (known: {', '.join(GPUS)})")
    return spec
