#!/usr/bin/env bash
# NOT YET RUN (2026-12-02: the device machine was replaced between the carry calls and the session's device time ran out).
# ON THE GPU MACHINE (device kind nvidia-h200), from the repo root, after the wheels and the Slurm kit travelled
# (.gpu/c1..c6, .gpu/w, .gpu/x as in README.md; .gpu/kit/slurmkit.tgz from scripts/gpu/slurm/make-kit.sh):
#   bash benchmarks/gpu/slurm_signal.sh start        set up, start a one-node Slurm (GRES gpu:1), then
#                                                     orchestrator submit --profile gpu-slurm (1,000 iterations)
#   bash benchmarks/gpu/slurm_signal.sh signal N S   once iteration N is logged, send the job's batch shell USR1
#                                                     (what Slurm's --signal=B:USR1@margin sends), then follow status
#                                                     for at most S seconds
#   bash benchmarks/gpu/slurm_signal.sh collect      status, log, attempts.jsonl, the checkpoint, sbatch.sh -> $OUT
# The path is the user's: sbatch -> batch shell (trap) -> srun -> node entry -> Megatron's --exit-signal-handler.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
OUTDIR=${OUT:-.gpu/signal-out}
ROOT=$PWD/.gpu/signal-runs
mkdir -p "$OUTDIR" "$ROOT"
source scripts/gpu/env.sh
newest() { ls -dt "$ROOT"/*/ 2>/dev/null | head -1; }

case ${1:-} in
  start)
    bash scripts/gpu/setup-remote.sh > "$OUTDIR/setup.log" 2>&1 || { tail -20 "$OUTDIR/setup.log"; exit 1; }
    bash scripts/gpu/slurm/start-gpu-slurm.sh .gpu/kit/slurmkit.tgz 2>&1 | tail -3
    source /tmp/gslurm/env.sh
    python3 -m orchestrator submit --profile gpu-slurm --set "profile.output_root=$ROOT" \
        --set training.train_iters=1000 --set training.save_interval=1000 --set training.log_interval=1 2>&1 |
        tee "$OUTDIR/submit.log" | tail -4 ;;
  signal)
    source /tmp/gslurm/env.sh
    run=$(newest); job=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["job_id"])' "$run/record.json")
    timeout "$3" bash -c "until grep -qE 'iteration +$2/' '$run'/logs/*.log 2>/dev/null; do sleep 2; done"
    date +%T; grep -E 'iteration +[0-9]+/' "$run"/logs/*.log | tail -1 | cut -c1-160
    scancel --batch --signal=USR1 "$job"; echo "sent USR1 to job $job's batch shell at $(date +%T)"
    timeout "$3" python3 -m orchestrator status "$run" --follow --interval 5 | tail -n 4 ;;
  collect)
    source /tmp/gslurm/env.sh
    run=$(newest)
    python3 -m orchestrator status "$run" | tee "$OUTDIR/status.txt"
    python3 -m orchestrator report "$run" | tee "$OUTDIR/report.txt"
    cp "$run"/logs/*.log "$run/attempts.jsonl" "$run/sbatch.sh" "$run/record.json" "$OUTDIR/" 2>&1
    { cat "$run/checkpoints/latest_checkpointed_iteration.txt"; echo; ls "$run/checkpoints"; du -sh "$run/checkpoints"; } \
        > "$OUTDIR/checkpoints.txt" 2>&1
    cat "$OUTDIR/checkpoints.txt"; cat "$run/attempts.jsonl" ;;
  *) echo "usage: $0 start | signal ITERATION SECONDS | collect" >&2; exit 2 ;;
esac
