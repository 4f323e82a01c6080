"""Know before you burn GPUs: per-GPU peak memory and throughput of a configuration (``estimate``), and the
ranking of the configurations a cluster can run (``planner.plan``). Pure functions of the typed configuration;
imports only the spec-level modules (config, layout, flops)."""

from __future__ import annotations

from ..spec.config import Experiment
from ..spec import gpus
from . import report
from .report import Estimate, estimate
from .setup import Setup, from_experiment


class NoGpu(ValueError):
    """The profile names no GPU type."""


def gpu_of(exp: Experiment) -> gpus.GpuSpec:
    """The profile's GPU spec; ``NoGpu`` when unset, ``gpus.UnknownGpu`` when not in the table."""
    if not exp.profile.gpu:
        raise NoGpu(f"profile {exp.profile.name} names no GPU type")
    return gpus.get(exp.profile.gpu)


def estimate_experiment(exp: Experiment) -> Estimate:
    """Memory and speed of an experiment on its profile's GPU."""
    return estimate(from_experiment(exp), gpu_of(exp))


__all__ = ["Estimate", "NoGpu", "Setup", "estimate", "estimate_experiment", "from_experiment", "gpu_of", "gpus", "report"]
