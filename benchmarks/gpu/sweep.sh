#!/usr/bin/env bash
# ON THE GPU MACHINE (device kind nvidia-h200-x2), from the repo root, after the wheels travelled (README.md):
#   bash benchmarks/gpu/sweep.sh start SWEEP_FILE     set up, then submit the sweep through the `local` profile
#   bash benchmarks/gpu/sweep.sh wait SECONDS         follow `orchestrator status` for at most SECONDS
#   bash benchmarks/gpu/sweep.sh collect              report table, JSON, plot and a tarball of the logs -> $OUT
#   bash benchmarks/gpu/sweep.sh plan PLAN_FILE       set up, then run each line of PLAN_FILE in turn, in the background:
#                                                     a line holds the arguments of `orchestrator submit --profile local`
#   bash benchmarks/gpu/sweep.sh wait-plan SECONDS    wait for the plan's end for at most SECONDS
#   bash benchmarks/gpu/sweep.sh collect-all          collect over every run directory the plan made
# The submit runs under setsid: the toolkit's local controller (one variant after another) is a job of its own
# and outlives the device call that started it, so a sweep longer than one call is followed over several.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-.gpu/sweep-out}
ROOT=$PWD/.gpu/runs
mkdir -p "$OUTDIR" "$ROOT"
source scripts/gpu/env.sh
newest() { ls -dt "$ROOT"/*/ 2>/dev/null | head -1; }
setup() {
    bash scripts/gpu/setup-remote.sh > "$OUTDIR/setup.log" 2>&1 || { tail -20 "$OUTDIR/setup.log"; exit 1; }
    nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
    python3 -c 'import torch, megatron.core, transformer_engine as te, submitit; from importlib.metadata import version as v; print("torch", torch.__version__, "megatron-core", v("megatron-core"), "TE", te.__version__, "submitit", submitit.__version__)'
}
report() {   # report NAME RUN_DIR...: table, JSON, plot and logs of these runs -> $OUTDIR
    local name=$1; shift
    python3 -m orchestrator report "$@" | tee "$OUTDIR/$name.report.txt"
    python3 -m orchestrator report "$@" --json > "$OUTDIR/$name.report.json"
    python3 -m orchestrator report "$@" --plot "$OUTDIR/$name.png"
}

case ${1:-} in
  start)
    setup
    setsid python3 -m orchestrator submit --profile local --sweep "$2" --set "profile.output_root=$ROOT" \
        > "$ROOT/submit-$(basename "$2" .yaml).out" 2>&1 < /dev/null &
    sleep 5; cat "$ROOT"/submit-*.out ;;
  wait)
    timeout "$2" python3 -m orchestrator status "$(newest)" --follow --interval 15 | tail -n 12 ;;
  collect)
    run=$(newest); name=$(basename "$run")
    python3 -m orchestrator status "$run"
    report "$name" "$run"
    tar czf "$OUTDIR/$name.logs.tgz" -C "$ROOT" "$name" ;;
  plan)
    setup
    setsid bash "$0" run-plan "$2" > "$ROOT/plan.out" 2>&1 < /dev/null &
    sleep 20; cat "$ROOT/plan.out" ;;
  run-plan)   # the background part of `plan`; word splitting of each line is meant (no spaces inside values)
    grep -v '^ *#' "$2" | while read -r line; do
        [ -n "$line" ] || continue
        echo "== $(date +%T) submit $line"
        # shellcheck disable=SC2086
        python3 -m orchestrator submit --profile local --set "profile.output_root=$ROOT" $line --follow < /dev/null
        rc=$?; echo "== $(date +%T) exit $rc"
    done
    echo "== $(date +%T) plan done" ;;
  wait-plan)
    timeout "$2" bash -c "until grep -q '== .* plan done' '$ROOT/plan.out'; do sleep 10; done"
    grep '^==' "$ROOT/plan.out"; tail -n 14 "$ROOT/plan.out" ;;
  collect-all)
    mapfile -t runs < <(ls -dtr "$ROOT"/*/)
    for run in "${runs[@]}"; do python3 -m orchestrator status "$run"; done
    report all "${runs[@]}"
    cp "$ROOT/plan.out" "$OUTDIR/"
    tar czf "$OUTDIR/all.logs.tgz" --exclude='*.pt' -C "$ROOT" . ;;
  *) echo "usage: $0 start SWEEP_FILE | wait SECONDS | collect | plan PLAN_FILE | wait-plan SECONDS | collect-all" >&2; exit 2 ;;
esac
