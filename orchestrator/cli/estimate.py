"""``orchestrator estimate``: per-GPU peak memory by component, step time, tokens/s/GPU and Megatron's TFLOP/s/GPU
of the resolved experiment, before any GPU is allocated."""

from __future__ import annotations

import json

import click

from .. import estimate as est
from ..submit.rules import blocking, validate
from .common import experiment_options, gpu_or_fail, handle_config_errors, load, report_problems


def text_report(e: est.Estimate) -> str:
    """The human-readable estimate."""
    m, s = e.memory, e.step
    lines = [f"GPU {e.gpu.name} ({e.gpu.memory_gb:.1f} GB): peak {m.peak_allocated_gb:.1f} GB allocated "
             f"(pipeline rank {m.worst_rank}, micro-batches in flight per chunk {list(m.inflight)}), "
             f"{m.device_gb:.1f} GB with context and buffers -> {'fits' if e.fits else 'DOES NOT FIT'}",
             f"step {s.step_time_s:.3f} s, {s.tflops_per_gpu:.1f} TFLOP/s/GPU, {s.tokens_per_s_per_gpu:.0f} tokens/s/GPU",
             "memory by component (GB):"]
    lines += [f"  {name:<45} {value:8.2f}" for name, value in
              sorted(est.report.grouped(m.breakdown).items(), key=lambda kv: -kv[1])]
    lines.append("time by cause (s per step): " + ", ".join(f"{k} {v:.3f}" for k, v in s.parts.items() if v))
    lines.append("per-rank peaks (GB): " + " ".join(f"{v:.1f}" for v in m.per_rank_gb))
    lines += ["assumptions:"] + [f"  - {a}" for a in est.report.ASSUMPTIONS]
    return "\n".join(lines)


@click.command("estimate")
@experiment_options
@click.option("--json", "as_json", is_flag=True, help="one JSON object (peak_memory_gb, tflops_per_gpu, breakdown ...)")
@handle_config_errors
def estimate(profile: str, recipe: str | None, overrides: tuple[str, ...], profiles_dir: str | None,
             recipes_dir: str | None, as_json: bool) -> None:
    """Predict per-GPU peak memory and throughput of PROFILE + RECIPE (+ overrides) on the profile's GPU."""
    exp = load(profile, recipe, overrides, profiles_dir, recipes_dir)
    gpu = gpu_or_fail(exp)
    problems = [p for p in validate(exp) if p.setting != "memory"]
    if blocking(problems, for_submit=False):
        report_problems(problems, for_submit=False)
    e = est.estimate(est.from_experiment(exp), gpu)
    click.echo(json.dumps(e.to_json(), indent=2) if as_json else text_report(e))
