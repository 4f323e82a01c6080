#!/usr/bin/env bash
# ON THE GPU MACHINE (device kind nvidia-h200-x2), from the repo root, after the wheels travelled (README.md):
#   bash benchmarks/gpu/sweep.sh start SWEEP_FILE     set up, then submit the sweep through the `local` profile
#   bash benchmarks/gpu/sweep.sh wait SECONDS         follow `orchestrator status` for at most SECONDS
#   bash benchmarks/gpu/sweep.sh collect              report table, JSON, plot and a tarball of the logs -> $OUT
# The submit runs under setsid: the toolkit's local controller (one variant after another) is a job of its own
# and outlives the device call that started it, so a sweep longer than one call is followed over several.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-.gpu/sweep-out}
ROOT=$PWD/.gpu/runs
mkdir -p "$OUTDIR" "$ROOT"
source scripts/gpu/env.sh
newest() { ls -dt "$ROOT"/*/ 2>/dev/null | head -1; }

case ${1:-} in
  start)
    bash scripts/gpu/setup-remote.sh > "$OUTDIR/setup.log" 2>&1 || { tail -20 "$OUTDIR/setup.log"; exit 1; }
    nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
    python3 -c 'import torch, megatron.core, transformer_engine as te, submitit; from importlib.metadata import version as v; print("torch", torch.__version__, "megatron-core", v("megatron-core"), "TE", te.__version__, "submitit", submitit.__version__)'
    setsid python3 -m orchestrator submit --profile local --sweep "$2" --set "profile.output_root=$ROOT" \
        > "$ROOT/submit-$(basename "$2" .yaml).out" 2>&1 < /dev/null &
    sleep 5; cat "$ROOT"/submit-*.out ;;
  wait)
    timeout "$2" python3 -m orchestrator status "$(newest)" --follow --interval 15 | tail -n 12 ;;
  collect)
    run=$(newest); name=$(basename "$run")
    python3 -m orchestrator status "$run"
    python3 -m orchestrator report "$run" | tee "$OUTDIR/$name.report.txt"
    python3 -m orchestrator report "$run" --json > "$OUTDIR/$name.report.json"
    python3 -m orchestrator report "$run" --plot "$OUTDIR/$name.png"
    tar czf "$OUTDIR/$name.logs.tgz" -C "$ROOT" "$name" ;;
  *) echo "usage: $0 start SWEEP_FILE | wait SECONDS | collect" >&2; exit 2 ;;
esac
