"""What a set of runs achieved: one row per run or sweep variant, as a table, JSON or a plot.

Inputs are log files or directories. A directory is a run: its logs are found by ``find_logs``; a run directory
of a sweep (``tasks/<chunk>_<task>/`` with a ``record.json`` naming the variant) gives one row per variant. Each
row holds the steady-state figures (medians over iterations >= 3, Megatron's own TFLOP/s/GPU), peak memory, the
final loss, the run's state and, when it failed, the diagnosis. Rows follow the seed guide's order of key
configurations when the variant names say which step they are, otherwise the order given. matplotlib is imported
only by ``plot``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..spec import flops
from ..node import diagnose
from . import goodput as goodput_mod, logparse, tables
from ..submit import run_records

LOG_SUFFIXES = (".log", ".out")
"""Files directly in a run directory that are logs; everything under ``logs/`` is a log too."""

ABLATION_STEPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("baseline", frozenset({"baseline", "bf16", "base"})),
    ("moe fusions", frozenset({"fusions", "fusion", "fused", "permute", "router", "grouped"})),
    ("deepep", frozenset({"deepep", "flex", "hybridep"})),
    ("fine-grained recompute", frozenset({"recompute", "recomp"})),
    ("ce loss fusion", frozenset({"ce", "celoss", "cefusion"})),
    ("fp8 blockwise", frozenset({"fp8", "blockwise"})),
    ("fp8 param gather", frozenset({"param", "paramgather", "fp8param"})),
    ("bf16 optimizer states", frozenset({"optim", "optimizer", "moments", "precision"})),
    ("manual gc", frozenset({"gc", "manualgc"})),
    ("ep a2a overlap", frozenset({"a2a", "overlap", "a2aoverlap"})),
    ("mtp", frozenset({"mtp"})),
    ("pp layout", frozenset({"layout", "vpp"})),
    ("force balance", frozenset({"forcebal", "force", "balanced", "balance"})),
)
"""The seed guide's "Key Configurations" in its order (each step adds to the one before), with the name tokens
that identify a variant at that step (``fp8-a2a-overlap`` is at "ep a2a overlap")."""


@dataclass
class Row:
    """One run or sweep variant."""

    name: str
    """Variant name (sweep task record), else the directory or log file name."""
    logs: list[str]
    """The log files read."""
    state: str
    """``completed`` (last iteration reached), ``failed`` (a diagnosis), ``incomplete`` or ``no iterations``."""
    iterations: str
    """Progress ``last/total`` (``-`` without iteration lines)."""
    tflops_per_gpu: float | None
    """Median of Megatron's ``throughput per GPU (TFLOP/s/GPU)`` over iterations >= ``first_iter``."""
    tokens_per_s_per_gpu: float | None
    """Median tokens/s/GPU over the same iterations (GBS x seq_length / (iteration s x world size))."""
    iter_ms: float | None
    """Median iteration time in ms over the same iterations."""
    formula_tflops_per_gpu: float | None
    """Cross-check: ``flops`` formula on the argument dump and ``iter_ms`` (None without a dump)."""
    max_allocated_gb: float | None
    """Peak ``max allocated`` of the memory report lines in GB of 10^9 bytes (Megatron's "MB" are MiB: x 2^20 / 10^9)."""
    final_lm_loss: float | None
    """``lm loss`` of the last iteration."""
    diagnosis: diagnose.Diagnosis | None
    """Why it failed, when the logs say."""
    dispatcher: str | None = None
    """MoE token dispatcher that ran, ``(DeepEP fallback)`` added when the node entry replaced DeepEP."""
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    """(iteration, lm loss) pairs, for the plot."""
    gpus: int | None = None
    """World size of the run (GPUs), from Megatron's argument dump."""
    profiles: list[str] = field(default_factory=list)
    """What profiling left in the run directory: torch-profiler traces, the memory snapshot."""
    goodput: goodput_mod.Goodput | None = None
    """GPU-hours by what they bought, over every attempt (``attempts.jsonl`` of a Slurm run; None elsewhere)."""


PROFILE_FILES = ("torch_profile/*.json.gz", "torch_profile/*.json", "memory-snapshot.pickle")
"""Where ``profiling`` settings make Megatron write (``spec.megatron_args.profiling_flags``), in a run directory."""


def profile_files(where: Path) -> list[str]:
    """The profiling outputs under a run (or task) directory."""
    return [str(p) for pattern in PROFILE_FILES for p in sorted(where.glob(pattern))] if where.is_dir() else []


def find_logs(path: str | os.PathLike[str]) -> list[Path]:
    """The logs of a run: ``path`` itself if a file, else its ``*.log`` / ``*.out`` files and everything under
    ``logs/`` (recursively), in name order. The one place that knows the run-directory layout."""
    base = Path(path)
    if base.is_file():
        return [base]
    direct = [p for p in base.iterdir() if p.is_file() and p.suffix in LOG_SUFFIXES] if base.is_dir() else []
    nested = [p for p in (base / "logs").rglob("*") if p.is_file()] if (base / "logs").is_dir() else []
    return sorted(direct) + sorted(nested)


def recorded_tasks(base: Path) -> list[tuple[str, Path]] | None:
    """(variant, task directory) of every task a sweep's ``record.json`` lists, in sweep order (one file read for
    the whole sweep); None when ``base`` has no readable run record."""
    try:
        record = run_records.load_record(base)
    except (run_records.RunError, TypeError):
        return None
    return [(t.variant, base / t.dir) for t in record.tasks]


def find_variants(path: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """(name, path) of each row an input gives: one per sweep task of a run directory (as its record lists them,
    else as found under ``tasks/``), else the input itself."""
    base = Path(path)
    recorded = recorded_tasks(base) if base.is_dir() else None
    if recorded:
        return recorded
    tasks = sorted(p for p in (base / "tasks").glob("*") if p.is_dir()) if base.is_dir() else []
    if tasks:
        return [(_variant_name(t), t) for t in tasks]
    return [(base.stem if base.is_file() else base.resolve().name, base)]


def _variant_name(task_dir: Path) -> str:
    try:
        name = json.loads((task_dir / "record.json").read_text()).get("variant")
    except (OSError, ValueError, AttributeError):
        name = None
    return name if isinstance(name, str) and name else task_dir.name


def _pick(diagnoses: Iterable[diagnose.Diagnosis | None]) -> diagnose.Diagnosis | None:
    """Of several logs' diagnoses, a specific signature before a bare exception, a timeout or a launcher exit."""
    generic = {"python_exception": 1, "nccl_watchdog_timeout": 2, "rank_exit": 3}
    found = [d for d in diagnoses if d is not None]
    return min(found, key=lambda d: generic.get(d.name, 0)) if found else None


def _formula_tflops(summary: logparse.LogSummary, iter_ms: float | None) -> float | None:
    gbs, seq, world = (summary.int_arg(k) for k in ("global_batch_size", "seq_length", "world_size"))
    if not (summary.args and iter_ms and gbs and seq and world):
        return None
    try:
        shape = flops.ModelShape.from_args(summary.args, summary.padded_vocab_size)
        return flops.tflops_per_gpu(shape, gbs, seq, iter_ms / 1000.0, world)
    except (ValueError, TypeError):
        return None


def _dispatcher(summary: logparse.LogSummary) -> str | None:
    if summary.deepep_fallback:
        return f"{summary.dispatcher or 'alltoall'} (DeepEP fallback)"
    return summary.dispatcher


def build_row(name: str, logs: Sequence[Path], first_iter: int = 3, where: Path | None = None) -> Row:
    """One row from the logs of one run or variant."""
    summary = logparse.parse_files(logs)
    steady = logparse.steady_state(summary.records, first_iter)
    diagnosis = _pick(diagnose.diagnose_file(p) for p in logs)
    if diagnosis is not None:
        state = "failed"
    elif summary.completed:
        state = "completed"
    else:
        state = "incomplete" if summary.records else ("no iterations" if logs else "no logs")
    last = summary.records[-1] if summary.records else None
    peak = summary.peak_max_allocated_mb
    return Row(
        name=name, logs=[str(p) for p in logs], state=state,
        iterations=f"{last.iteration}/{last.train_iters}" if last else "-",
        tflops_per_gpu=steady.median_tflops_per_gpu, tokens_per_s_per_gpu=steady.tokens_per_s_per_gpu,
        iter_ms=steady.median_iter_ms, formula_tflops_per_gpu=_formula_tflops(summary, steady.median_iter_ms),
        max_allocated_gb=None if peak is None else peak * MIB / GB, final_lm_loss=summary.final_lm_loss,
        diagnosis=diagnosis, dispatcher=_dispatcher(summary), gpus=summary.int_arg("world_size"),
        loss_curve=[(r.iteration, r.lm_loss) for r in summary.records if r.lm_loss is not None],
        profiles=profile_files(where) if where is not None else [],
        goodput=goodput_mod.of_run(where, steady.median_iter_ms) if where is not None and where.is_dir() else None)


def ablation_step(name: str) -> int | None:
    """Index in ``ABLATION_STEPS`` of the furthest key configuration a variant name mentions, None if none."""
    tokens = set(re.split(r"[^a-z0-9]+", name.lower()))
    steps = [i for i, (_, words) in enumerate(ABLATION_STEPS) if tokens & words]
    return max(steps) if steps else None


def order_rows(rows: list[Row]) -> list[Row]:
    """Guide order when every name is known to it (ties keep the given order), else the given order."""
    steps = [ablation_step(r.name) for r in rows]
    if any(s is None for s in steps):
        return list(rows)
    return [row for _, _, row in sorted(zip(steps, range(len(rows)), rows), key=lambda t: (t[0], t[1]))]


def build_report(paths: Iterable[str | os.PathLike[str]], first_iter: int = 3) -> list[Row]:
    """Rows for every input (log files, run directories, sweep run directories), ordered by ``order_rows``."""
    rows = [build_row(name, find_logs(p), first_iter, Path(p)) for path in paths for name, p in find_variants(path)]
    return order_rows(rows)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


MIB = 2**20
GB = 10**9

COLUMNS = ("variant", "GPUs", "state", "iters", "TFLOP/s/GPU", "tokens/s/GPU", "iter ms", "max alloc GB", "lm loss",
           "dispatcher", "diagnosis")


def table(rows: Sequence[Row]) -> str:
    """The plain-text table, then one ``name: cause [log line N]; fix: ...`` line per failed row."""
    cells = [[r.name, _fmt(r.gpus, "d"), r.state, r.iterations, _fmt(r.tflops_per_gpu, ".1f"), _fmt(r.tokens_per_s_per_gpu, ".0f"),
              _fmt(r.iter_ms, ".1f"), _fmt(r.max_allocated_gb, ".1f"), _fmt(r.final_lm_loss, ".4g"),
              r.dispatcher or "-", r.diagnosis.name if r.diagnosis else ""] for r in rows]
    lines = [tables.table(COLUMNS, cells, right={1, 4, 5, 6, 7, 8})]
    for r in rows:
        if r.diagnosis:
            where = f" [log line {r.diagnosis.line}]" if r.diagnosis.line else ""
            lines.append(f"{r.name}: {r.diagnosis.cause}{where}; fix: {r.diagnosis.fix}")
        if r.profiles:
            lines.append(f"{r.name}: profiling wrote {', '.join(r.profiles)}")
        if r.goodput:
            lines.append(goodput_mod.line(r.name, r.goodput))
    return "\n".join(lines)


def to_json(rows: Sequence[Row]) -> str:
    """The rows as a JSON list (loss curves included)."""
    return tables.to_json(rows)


def plot(rows: Sequence[Row], path: str | os.PathLike[str]) -> Path:
    """Steady-state TFLOP/s/GPU per run (bars for completed runs only, grouped by GPU count) beside the lm-loss
    curves, one colour per run in both panels; written to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted(rows, key=lambda r: r.gpus or 10**9)   # stable: grouped by GPU count (unknown last)
    colours = {id(r): plt.get_cmap("tab20")(i % 20) for i, r in enumerate(ordered)}
    fig, (bars, curves) = plt.subplots(1, 2, figsize=(13, 4.8))
    _draw_bars(bars, ordered, colours)
    for r in ordered:
        if r.loss_curve:
            its, losses = zip(*r.loss_curve)
            curves.plot(its, losses, marker=".", label=r.name, color=colours[id(r)])
    curves.set_xlabel("iteration")
    curves.set_ylabel("lm loss")
    curves.set_yscale("log")
    curves.set_title("lm loss")
    if any(r.loss_curve for r in rows):   # many variants: beside the curves, not over them
        curves.legend(fontsize=8, **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if len(rows) > 6 else {}))
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _draw_bars(ax: Any, rows: Sequence[Row], colours: dict[int, Any]) -> None:
    """A bar only where the run completed; a failed or unfinished run is marked and named, never drawn as a value."""
    for i, r in enumerate(rows):
        if r.state == "completed" and r.tflops_per_gpu is not None:
            drawn = ax.bar([i], [r.tflops_per_gpu], color=colours[id(r)])
            ax.bar_label(drawn, labels=[f"{r.tflops_per_gpu:.1f}"], fontsize=8)
        else:
            ax.plot([i], [0], marker="x", color="tab:red")
            ax.annotate(r.state, (i, 0), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8,
                        color="tab:red", rotation=90)
    counts = sorted({r.gpus for r in rows if r.gpus})
    for i in range(1, len(rows)):
        if len(counts) > 1 and rows[i].gpus != rows[i - 1].gpus:
            ax.axvline(i - 0.5, color="grey", linestyle=":")
    labels = [r.name + (f" ({r.gpus} GPUs)" if len(counts) > 1 and r.gpus else "") for r in rows]
    ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
    if len(counts) == 1:
        ax.set_xlabel(f"every run on {counts[0]} GPU{'s' if counts[0] != 1 else ''}")
    ax.set_ylabel("TFLOP/s/GPU (median, iterations >= 3)")
    ax.set_title("throughput per run (completed runs only)")
