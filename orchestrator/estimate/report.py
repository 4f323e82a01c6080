"""One estimate of a configuration: memory, step time and throughput together, its JSON form and the advice
(largest component, cheapest fix) the guard rails print."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .calibration import FITTED, Efficiency
from ..spec.gpus import GpuSpec
from .memory import MemoryEstimate, estimate_memory, peaks
from .setup import Setup
from .throughput import StepEstimate, estimate_step

ASSUMPTIONS = (
    "balanced routing (every expert gets top-k x tokens / experts), dropless",
    "peak memory = PyTorch allocator peak of the worst pipeline rank (Megatron's 'max allocated'); the CUDA "
    "context, NCCL and DeepEP buffers are added for device_memory_gb",
    "FP8 weights take 2 bytes (row- and column-wise copies); BF16 weights with FP8 compute keep a cached FP8 copy",
    "gradients in fp32 unless --grad-reduce-in-bf16; distributed optimizer shards main weights and moments over "
    "DP x CP (dense) and expert DP (experts)",
    "interleaved 1F1B holds warm-up + 1 forward units in schedule order; EP A2A overlap one more (PP > 1)",
    "MoE all-to-all: NCCL sends one copy per routed expert; DeepEP one per remote node (node-limited routing)",
    "no TP communication overlap; DP reduce/gather exposed unless --overlap-grad-reduce is in training.extra_args",
)


@dataclass(frozen=True)
class Estimate:
    """Memory and speed of one configuration on one GPU type."""

    setup: Setup
    """The configuration."""
    gpu: GpuSpec
    """The GPU type."""
    memory: MemoryEstimate
    """Peak memory, by component."""
    step: StepEstimate
    """Step time and throughput."""

    @property
    def fits(self) -> bool:
        """The device total stays within the GPU's memory."""
        return self.memory.device_gb <= self.gpu.memory_gb

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``orchestrator estimate --json``."""
        s = self.setup
        return {
            "gpu": self.gpu.name, "gpu_memory_gb": self.gpu.memory_gb,
            "peak_memory_gb": round(self.memory.peak_allocated_gb, 3),
            "device_memory_gb": round(self.memory.device_gb, 3), "fits": self.fits,
            "worst_pipeline_rank": self.memory.worst_rank, "per_rank_peak_gb": [round(v, 3) for v in self.memory.per_rank_gb],
            "inflight_microbatches": list(self.memory.inflight),
            "breakdown": {k: round(v, 4) for k, v in self.memory.breakdown.items()},
            "tflops_per_gpu": round(self.step.tflops_per_gpu, 1), "step_time_s": round(self.step.step_time_s, 4),
            "tokens_per_s_per_gpu": round(self.step.tokens_per_s_per_gpu, 1),
            "time_breakdown_s": {k: round(v, 4) for k, v in self.step.parts.items()},
            "parallel": {"tp": s.tp, "pp": s.pp, "vpp": s.vpp, "cp": s.cp, "ep": s.ep, "etp": s.etp, "dp": s.dp,
                         "mbs": s.mbs, "gbs": s.gbs, "microbatches": s.microbatches, "world": s.world},
            "efficiency": FITTED.as_dict(), "assumptions": list(ASSUMPTIONS),
        }


def estimate(setup: Setup, gpu: GpuSpec, eff: Efficiency = FITTED) -> Estimate:
    """Memory and speed of a configuration."""
    return Estimate(setup, gpu, estimate_memory(setup), estimate_step(setup, gpu, eff))


def grouped(breakdown: dict[str, float]) -> dict[str, float]:
    """The breakdown summed into its top-level groups (activations by layer kind and output)."""
    out: dict[str, float] = {}
    for key, value in breakdown.items():
        parts = key.split(".")
        group = ".".join(parts[:2]) if parts[0] == "activations" and parts[1] in ("dense_layer", "moe_layer") \
            else (f"activations.{parts[1].split('_')[0]}" if parts[0] == "activations" else parts[0])
        out[group] = out.get(group, 0.0) + value
    return out


def largest_component(breakdown: dict[str, float]) -> tuple[str, float]:
    """The single largest named term of the breakdown."""
    name = max(breakdown, key=lambda k: breakdown[k])
    return name, breakdown[name]


def cheapest_fix(setup: Setup, gpu: GpuSpec) -> str:
    """Of the planner's memory fixes that bring the device total within the GPU's memory, the one predicted to
    keep the most throughput."""
    from .planner import fixes  # the planner's variations; imported here to keep the modules acyclic

    fitting = [(text, variant) for text, variant in fixes(setup) if peaks(variant)[1] <= gpu.memory_gb]
    if not fitting:
        return "more GPUs per model copy (larger PP or EP), or a GPU with more memory"
    text, _ = max(fitting, key=lambda f: estimate_step(f[1], gpu).tflops_per_gpu)
    return text
