"""The toolkit's launch against a plain ``torchrun`` of the same training entry with the same flags.

ON THE GPU MACHINE, from the repo root, after ``source scripts/gpu/env.sh``:

    python3 benchmarks/gpu/launcher_vs_torchrun.py --variant fp8-a2a-overlap --rounds 1 --out "$OUT"
    python3 benchmarks/gpu/launcher_vs_torchrun.py --pick --rounds 2 --out "$OUT"   # the machine's own pick

``--pick``: the configuration ``bash run.sh`` picks for this machine's GPUs (``submit/fit.py``: the planner's
fastest of the default recipe that fits), with its prediction beside the measurement.

Runs in ABBA order (toolkit, torchrun, torchrun, toolkit per round) so drift of the machine cancels out. The
toolkit run is ``orchestrator submit --profile local`` (launch_local.sh → node entry → train); the torchrun run
takes the very command and environment the toolkit rendered into that run's job.json. Prints each run's
steady-state TFLOP/s/GPU (median of Megatron's own figure over iterations >= 3), time to the first iteration,
and the ratio toolkit / torchrun.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.observe import logparse
from orchestrator.spec.sweep import load_sweep

SWEEP = os.environ.get("COMPARE_SWEEP", "sweeps/proxy-ablation.yaml")


def variant_overrides(name: str) -> list[str]:
    sweep = load_sweep(SWEEP)
    [variant] = [v for v in sweep.variants if v.name == name]
    return sweep.set + variant.set


def picked_overrides() -> tuple[list[str], dict[str, object]]:
    """The overrides ``run.sh`` would pick on this machine, and what the planner predicts for them."""
    from orchestrator.spec.config import load_experiment
    from orchestrator.submit import fit

    exp = load_experiment("local", None)
    pick = fit.for_machine(exp, recipe_named=False, user=[])
    if pick is None or not pick.overrides:
        raise SystemExit(f"--pick: nothing picked on this machine ({pick.line if pick else 'no GPU found'})")
    print(f"pick: {pick.line}", flush=True)
    from orchestrator import estimate

    chosen = load_experiment("local", None, list(pick.overrides))
    predicted = estimate.estimate_experiment(chosen)
    return list(pick.overrides), {"line": pick.line, "overrides": list(pick.overrides),
                                  "predicted_tflops": round(predicted.step.tflops_per_gpu, 1),
                                  "predicted_device_memory_gb": round(predicted.memory.device_gb, 1)}


def toolkit_run(overrides: list[str], root: Path, tag: str) -> tuple[Path, float]:
    """One toolkit launch; returns its log and wall seconds."""
    before = set(root.glob("*")) if root.exists() else set()
    cmd = [sys.executable, "-m", "orchestrator", "submit", "--profile", "local", "--recipe", "dsv3-proxy-3l",
           "--set", f"profile.output_root={root}", *[a for o in overrides for a in ("--set", o)], "--follow"]
    start = time.monotonic()
    subprocess.run(cmd, check=False)
    wall = time.monotonic() - start
    [run_dir] = sorted(set(root.glob("*")) - before)
    logs = sorted((run_dir / "logs").glob("*.log"))
    print(f"[{tag}] toolkit run {run_dir.name}: {wall:.1f} s", flush=True)
    return logs[0], wall


def torchrun_run(job_json: Path, out: Path, tag: str) -> tuple[Path, float]:
    """torchrun of the same command with the same environment as the toolkit's job.json."""
    spec = json.loads(job_json.read_text())
    command = spec["command"]
    entry = command[command.index("-m") + 1:] if "-m" in command else command[2:]
    argv = ["torchrun", "--nproc-per-node", str(spec["gpus_per_node"]), "-m", *entry]
    env = {**os.environ, **spec["env"]}
    log = out / f"torchrun-{tag}.log"
    start = time.monotonic()
    with log.open("w") as fh:
        fh.write("torchrun: " + " ".join(argv) + "\n")
        fh.flush()
        subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    wall = time.monotonic() - start
    print(f"[{tag}] torchrun: {wall:.1f} s", flush=True)
    return log, wall


def figures(log: Path) -> dict[str, float | None]:
    summary = logparse.parse_file(log)
    steady = logparse.steady_state(summary.records, first_iter=3)
    first = next((line for line in log.read_text(errors="replace").splitlines()
                  if "first iteration after" in line), "")
    to_first = float(first.split("first iteration after")[1].split("s")[0]) if first else None
    return {"tflops": steady.median_tflops_per_gpu, "iter_ms": steady.median_iter_ms, "to_first_iter_s": to_first}


def write_summary(results: dict[str, list[dict[str, float | None]]], ns: argparse.Namespace,
                  predicted: dict[str, object]) -> dict[str, object]:
    summary = {k: {"runs": v, "median_tflops": statistics.median(x["tflops"] for x in v if x["tflops"])}
               for k, v in results.items()}
    summary["ratio_toolkit_over_torchrun"] = summary["toolkit"]["median_tflops"] / summary["torchrun"]["median_tflops"]
    summary["variant"] = "pick" if ns.pick else ns.variant
    summary["order"] = "ABBA per round (toolkit, torchrun, torchrun, toolkit)"
    if predicted:
        summary["pick"] = predicted
        summary["measured_over_predicted"] = summary["toolkit"]["median_tflops"] / predicted["predicted_tflops"]
    (ns.out / ("launcher-vs-torchrun.json" if ns.pick else "compare.json")).write_text(json.dumps(summary, indent=2))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="fp8-a2a-overlap")
    parser.add_argument("--pick", action="store_true", help="the configuration run.sh picks for this machine")
    parser.add_argument("--iters", type=int, default=None, help="training.train_iters of every run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".gpu/compare-out")))
    parser.add_argument("--root", type=Path, default=Path(".gpu/compare-runs").resolve())
    ns = parser.parse_args()
    ns.out.mkdir(parents=True, exist_ok=True)
    overrides, predicted = picked_overrides() if ns.pick else (variant_overrides(ns.variant), {})
    if ns.iters:
        overrides.append(f"training.train_iters={ns.iters}")
    results: dict[str, list[dict[str, float | None]]] = {"toolkit": [], "torchrun": []}
    for r in range(ns.rounds):
        log, _ = toolkit_run(overrides, ns.root, f"A{r}")
        results["toolkit"].append(figures(log))
        job_json = log.parent.parent / "job.json"
        for b in range(2):
            tlog, _ = torchrun_run(job_json, ns.out, f"B{r}{b}")
            results["torchrun"].append(figures(tlog))
        log, _ = toolkit_run(overrides, ns.root, f"A{r}'")
        results["toolkit"].append(figures(log))
        summary = write_summary(results, ns, predicted)   # after every round: a cut-off call keeps what ran
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
