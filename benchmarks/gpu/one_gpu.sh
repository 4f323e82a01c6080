#!/usr/bin/env bash
# ON THE GPU MACHINE (device kind nvidia-h200, one GPU), from the repo root, after the wheels travelled
# (.gpu/c1..c5, .gpu/w, .gpu/x as in README.md):
#   bash benchmarks/gpu/one_gpu.sh runsh      set up, then `bash run.sh` as shipped: the local profile counts the
#                                             GPU, picks the configuration that fits it, preflights and trains
#   bash benchmarks/gpu/one_gpu.sh compare    the picked configuration through the toolkit against plain torchrun,
#                                             2 rounds of ABBA (4 runs a side): launcher-vs-torchrun.json
#   bash benchmarks/gpu/one_gpu.sh profile    the pick with --profile-steps 4-6 --memory-snapshot; the trace is read
#                                             back (kernels counted) and `report` lists the files
# Everything the runs wrote (logs, records, the JSON) goes to $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-.gpu/one-gpu-out}
mkdir -p "$OUTDIR"
source scripts/gpu/env.sh
nvidia-smi -L | tee "$OUTDIR/gpus.txt"

case ${1:-} in
  runsh)
    bash scripts/gpu/setup-remote.sh > "$OUTDIR/setup.log" 2>&1 || { tail -20 "$OUTDIR/setup.log"; exit 1; }
    OUTPUT_DIR=$PWD/.gpu/runsh-runs bash run.sh > "$OUTDIR/run.sh.log" 2>&1
    echo "run.sh exit $?" | tee -a "$OUTDIR/run.sh.log"
    tail -25 "$OUTDIR/run.sh.log"
    tar czf "$OUTDIR/runsh-runs.tgz" --exclude=checkpoints -C .gpu runsh-runs ;;
  compare)
    python3 benchmarks/gpu/launcher_vs_torchrun.py --pick --rounds "${ROUNDS:-2}" --iters "${ITERS:-10}" \
        --out "$OUTDIR" --root "$PWD/.gpu/compare-runs" > "$OUTDIR/compare.log" 2>&1
    echo "compare exit $?" | tee -a "$OUTDIR/compare.log"
    grep -E '^\[|^pick|ratio|measured_over' "$OUTDIR/compare.log"
    tar czf "$OUTDIR/compare-runs.tgz" --exclude=checkpoints -C .gpu compare-runs ;;
  profile)
    root=$PWD/.gpu/profile-runs
    python3 -m orchestrator submit --profile local --set "profile.output_root=$root" --set training.train_iters=8 \
        --profile-steps 4-6 --memory-snapshot --follow > "$OUTDIR/profile.log" 2>&1
    echo "profile exit $?" | tee -a "$OUTDIR/profile.log"
    run=$(ls -dt "$root"/*/ | head -1)
    python3 -m orchestrator report "$run" | tee "$OUTDIR/profile-report.txt"
    python3 - "$run" <<'PY' | tee "$OUTDIR/profile-trace.json"
import gzip, json, pathlib, sys
run = pathlib.Path(sys.argv[1])
out = {}
for trace in sorted(run.glob("torch_profile/*.json*")):
    opener = gzip.open if trace.suffix == ".gz" else open
    with opener(trace, "rt") as fh:
        events = json.load(fh).get("traceEvents", [])
    kernels = [e for e in events if e.get("cat") == "kernel"]
    top = {}
    for k in kernels:
        top[k["name"][:60]] = top.get(k["name"][:60], 0) + k.get("dur", 0)
    out[trace.name] = {"bytes": trace.stat().st_size, "events": len(events), "cuda_kernels": len(kernels),
                       "kernel_ms": round(sum(k.get("dur", 0) for k in kernels) / 1000, 1),
                       "top_kernels_ms": {n: round(d / 1000, 1) for n, d in sorted(top.items(), key=lambda t: -t[1])[:8]}}
snap = run / "memory-snapshot.pickle"
out["memory-snapshot.pickle"] = snap.stat().st_size if snap.exists() else None
print(json.dumps(out, indent=1))
PY
    tar czf "$OUTDIR/profile-runs.tgz" --exclude=checkpoints --exclude='*.pickle' --exclude='torch_profile' -C .gpu profile-runs ;;
  *) echo "usage: $0 runsh | compare | profile" >&2; exit 2 ;;
esac
