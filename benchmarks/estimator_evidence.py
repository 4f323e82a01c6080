"""Predicted vs measured: every run log under benchmarks/results/ (*/logs/, a sweep's
runs/*/tasks/*/logs/, compare/; new ones are picked up as they land),
the published Megatron-Bridge DeepSeek-V3 rows, and the full-scale guide configuration on h100-eos.

    python3 benchmarks/estimator_evidence.py                 # the tables, with the constants in use
    python3 benchmarks/estimator_evidence.py --fit           # fit the constants on FIT_SETS first, print them
    python3 benchmarks/estimator_evidence.py --fit --write   # ... and write them into calibration.py
    python3 benchmarks/estimator_evidence.py --markdown benchmarks/results/estimator/README.md

A run's GPU type is the first GPU-table name in its results directory's name (2026-11-28-h200x2 -> h200).
Runs whose directory is in calibration.FIT_SETS fit the constants; every other run tests them. The fit minimises
squared log errors of TFLOP/s/GPU with a weak pull towards the defaults (scipy's least_squares, bounded).
Memory has no fitted constant.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import textwrap
from dataclasses import dataclass, fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.observe import logparse  # noqa: E402
from orchestrator.spec.config import load_experiment  # noqa: E402
from orchestrator.estimate import calibration, gpus, published  # noqa: E402
from orchestrator.estimate.calibration import Efficiency  # noqa: E402
from orchestrator.estimate.memory import estimate_memory  # noqa: E402
from orchestrator.estimate.planner import layouts  # noqa: E402
from orchestrator.estimate.setup import Setup, even_stages, from_experiment, from_megatron_args, with_changes  # noqa: E402
from orchestrator.estimate.throughput import estimate_step  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MIB = 2**20


@dataclass
class Run:
    """One measured run."""

    name: str
    directory: str
    gpu: str
    setup: Setup
    tflops: float
    memory_gb: float | None

    @property
    def fit(self) -> bool:
        return self.directory in calibration.FIT_SETS


def gpu_of_dir(name: str) -> str | None:
    return next((g for g in gpus.GPUS if re.search(rf"(^|[^a-z]){g}", name.lower())), None)


LOG_GLOBS = ("*/logs/*.log", "*/runs/*/logs/*.log", "*/runs/*/*/logs/*.log", "*/runs/*/tasks/*/logs/*.log",
             "*/runs/torchrun/*.log", "*/compare/*/logs/*.log", "*/compare/*.log")
"""Where a results directory keeps Megatron logs: collected logs, a sweep's task directories, a comparison's runs."""


def run_name(log: Path) -> str:
    """A task's sweep variant (its record.json), prefixed ``compare-`` under compare/; else the log's stem."""
    record = log.parent.parent / "record.json"
    variant = json.loads(record.read_text()).get("variant") if log.parent.name == "logs" and record.is_file() else None
    in_compare = "compare" in log.relative_to(RESULTS).parts
    if variant is None and in_compare and log.parent.name == "logs":  # a toolkit run of the launcher comparison
        return f"compare-toolkit-{log.stem.rsplit('_', 1)[-1]}"
    if variant is None:
        return f"compare-{log.stem}" if in_compare and not log.stem.startswith("compare") else log.stem
    return f"compare-{variant}" if in_compare else str(variant)


def found_logs(extra: list[Path]) -> list[tuple[Path, str]]:
    """(log, results directory name) of every log under benchmarks/results and the extra directories."""
    out = [(log, log.relative_to(RESULTS).parts[0]) for pattern in LOG_GLOBS for log in sorted(RESULTS.glob(pattern))]
    return out + [(p, d.name) for d in extra for p in sorted(d.glob("*.log"))]


def load_runs(extra: list[Path]) -> list[Run]:
    out = []
    for log, directory in found_logs(extra):
        summary = logparse.parse_file(log)
        steady = logparse.steady_state(summary.records)
        gpu = gpu_of_dir(directory) or gpu_of_dir(log.name) or "h200"
        if not (summary.args and summary.completed and steady.median_tflops_per_gpu):
            continue
        try:
            setup = from_megatron_args(summary.args, summary.padded_vocab_size)
        except ValueError as err:
            print(f"skipped {log}: {err}", file=sys.stderr)
            continue
        peak = summary.peak_max_allocated_mb
        name = run_name(log) if log.is_relative_to(RESULTS) else log.stem
        out.append(Run(name, directory, gpu, setup, steady.median_tflops_per_gpu,
                       None if peak is None else peak * MIB / 1e9))
    return out


PRIORS: tuple[str, ...] = ("link", "a2a_hidden")
"""Constants the fit leaves at their default: the communication constants, fitted on the EP2 runs and held since
(the 1-GPU points have no communication; left free, the fit drives both to their bound 1.0)."""


def fit(runs: list[Run]) -> Efficiency:
    from scipy.optimize import least_squares  # benchmarks only

    base = Efficiency()
    names = [f.name for f in fields(Efficiency) if f.name not in PRIORS]
    x0 = [getattr(base, n) for n in names]
    lo = {"layer_fixed_s": 0.0, "gemm_m_half": 64.0, "gemm_bf16": 0.2, "gemm_fp8": 0.1, "memory_bound": 0.5,
          "link": 0.1, "a2a_hidden": 0.0}
    hi = {"layer_fixed_s": 0.05, "gemm_m_half": 65536.0, "gemm_bf16": 0.95, "gemm_fp8": 0.95, "memory_bound": 40.0,
          "link": 1.0, "a2a_hidden": 1.0}
    subset = [r for r in runs if r.fit]

    def residuals(x: list[float]) -> list[float]:
        eff = replace(base, **dict(zip(names, x)))
        res = [math.log(estimate_step(r.setup, gpus.get(r.gpu), eff).tflops_per_gpu / r.tflops) for r in subset]
        return res + [0.02 * math.log(v / d) for v, d in zip(x, x0) if d > 0 and v > 0]

    result = least_squares(residuals, x0, bounds=([lo[n] for n in names], [hi[n] for n in names]))
    return replace(base, **{n: round(float(v), 4) for n, v in zip(names, result.x)})


def write_constants(eff: Efficiency) -> None:
    path = Path(calibration.__file__)
    text = path.read_text()
    args = ", ".join(f"{k}={v}" for k, v in eff.as_dict().items())
    body = textwrap.fill(f"FITTED = Efficiency({args})", 118, subsequent_indent=" " * 20, break_long_words=False)
    path.write_text(re.sub(r"^FITTED = Efficiency\([^)]*\)", body, text, flags=re.M))


def pct(pred: float, meas: float) -> str:
    return f"{100 * (pred / meas - 1):+.1f} %"


def run_table(runs: list[Run], eff: Efficiency) -> list[str]:
    lines = ["| run | set | GPU | config | memory pred / meas GB | err | TFLOP/s pred / meas | err |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        s = r.setup
        mem = estimate_memory(s).peak_allocated_gb
        tf = estimate_step(s, gpus.get(r.gpu), eff).tflops_per_gpu
        config = (f"{s.world} GPU TP{s.tp} PP{s.pp} EP{s.ep} MBS{s.mbs} {'FP8' if s.fp8 else 'BF16'}"
                  f"{' rec=' + '+'.join(sorted(s.recompute)) if s.recompute else ''}"
                  f"{' a2a-ovl' if s.a2a_overlap else ''} {s.dispatcher}")
        meas_mem = f"{r.memory_gb:.2f}" if r.memory_gb else "–"
        lines.append(f"| {r.directory}/{r.name} | {'fit' if r.fit else 'test'} | {r.gpu} | {config} | "
                     f"{mem:.2f} / {meas_mem} | {pct(mem, r.memory_gb) if r.memory_gb else '–'} | "
                     f"{tf:.1f} / {r.tflops:.1f} | {pct(tf, r.tflops)} |")
    return lines


def summary(runs: list[Run], eff: Efficiency) -> list[str]:
    """Largest and mean absolute error per set."""
    out = ["| set | runs | memory: max / mean abs error | TFLOP/s: max / mean abs error |", "| --- | --- | --- | --- |"]
    for name, group in (("fit", [r for r in runs if r.fit]), ("test", [r for r in runs if not r.fit])):
        if not group:
            continue
        mem = [abs(estimate_memory(r.setup).peak_allocated_gb / r.memory_gb - 1) for r in group if r.memory_gb]
        tf = [abs(estimate_step(r.setup, gpus.get(r.gpu), eff).tflops_per_gpu / r.tflops - 1) for r in group]
        out.append(f"| {name} | {len(group)} | {100 * max(mem):.1f} % / {100 * sum(mem) / len(mem):.1f} % | "
                   f"{100 * max(tf):.1f} % / {100 * sum(tf) / len(tf):.1f} % |")
    return out


def published_setup(row: published.PublishedRow) -> Setup:
    profile = {"h100": "h100-eos", "gb200": "gb200-nvl72", "b200": "h100"}[row.gpu]
    exp = load_experiment(profile, "deepseek-v3", [f"profile.nodes={row.gpus // (4 if row.gpu == 'gb200' else 8)}",
                                                   f"profile.gpu={row.gpu}"])
    s = from_experiment(exp)
    stages = s.stages
    if (row.tp, row.pp, row.vpp) != (2, 8, 4):  # a layout with light embedding and loss stages, as the planner makes
        options = layouts(s.layers, s.mtp if row.mtp else 0, row.pp * row.vpp, s.first_dense)
        stages = options[0][1] if options else even_stages(s.layers, s.first_dense, s.mtp, row.pp * row.vpp)
    return with_changes(s, tp=row.tp, pp=row.pp, vpp=row.vpp, ep=row.ep, gbs=row.gbs, sp=row.tp > 1,
                        mtp=s.mtp if row.mtp else 0, fp8=row.precision != "bf16",
                        fp8_param_gather=row.precision != "bf16", stages=stages, overlap_grad_reduce=True,
                        overlap_param_gather=True, a2a_overlap=row.vpp > 1)


def published_table(eff: Efficiency) -> list[str]:
    lines = ["| release | system | config | TFLOP/s pred / published | err | tokens/s/GPU pred / published | "
             "memory pred GB (GPU has) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in published.ROWS:
        s = published_setup(row)
        gpu = gpus.get(row.gpu)
        step = estimate_step(s, gpu, eff)
        mem = estimate_memory(s)
        lines.append(f"| {row.release} | {row.gpus} x {row.gpu} | {row.precision} GBS{row.gbs} TP{row.tp} PP{row.pp} "
                     f"VP{row.vpp} EP{row.ep}{' MTP' if row.mtp else ''} | {step.tflops_per_gpu:.0f} / "
                     f"{row.tflops_per_gpu:.0f} | {pct(step.tflops_per_gpu, row.tflops_per_gpu)} | "
                     f"{step.tokens_per_s_per_gpu:.0f} / {row.tokens_per_s_per_gpu:.0f} | "
                     f"{mem.peak_allocated_gb:.1f} ({gpu.memory_gb:.0f}) |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="fit the constants on calibration.FIT_SETS first")
    ap.add_argument("--write", action="store_true", help="with --fit: write the constants into calibration.py")
    ap.add_argument("--extra", type=Path, action="append", default=[], help="another directory of logs (test set)")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = ap.parse_args()
    runs = load_runs(args.extra)
    eff = fit(runs) if args.fit else calibration.FITTED
    if args.fit and args.write:
        write_constants(eff)
    out = [f"constants: {eff.as_dict()}", f"fit sets: {', '.join(calibration.FIT_SETS)}", "",
           *summary(runs, eff), "", *run_table(runs, eff), "", *published_table(eff)]
    print("\n".join(out))
    if args.markdown:
        args.markdown.write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
