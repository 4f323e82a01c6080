#!/usr/bin/env bash
# ON THE GPU MACHINE (device kind nvidia-h200), from the repo root, after the wheels and the Slurm kit travelled
# (.gpu/c1..c5, .gpu/w, .gpu/x as in README.md; .gpu/kit/slurmkit.tgz from scripts/gpu/slurm/make-kit.sh):
#   bash benchmarks/gpu/slurm_segments.sh start      set up, start a one-node Slurm (GRES gpu:1), then
#                                                     orchestrator submit --profile gpu-slurm --segments 2
#   bash benchmarks/gpu/slurm_segments.sh wait S     follow `orchestrator status` for at most S seconds
#   bash benchmarks/gpu/slurm_segments.sh collect    status, logs, report (table, JSON) and the logs -> $OUT
# The path is the user's: sbatch -> srun -> node entry -> binding -> Megatron; segment 2 starts after segment 1
# (afterok) and loads its checkpoint. The Slurm daemons outlive the call (the machine keeps them while warm).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-.gpu/segments-out}
ROOT=$PWD/.gpu/runs
mkdir -p "$OUTDIR" "$ROOT"
source scripts/gpu/env.sh
newest() { ls -dt "$ROOT"/*/ 2>/dev/null | head -1; }
SET=(--set "profile.output_root=$ROOT" --set profile.time_limit=00:04:00 --set training.log_interval=1)

case ${1:-} in
  start)
    bash scripts/gpu/setup-remote.sh > "$OUTDIR/setup.log" 2>&1 || { tail -20 "$OUTDIR/setup.log"; exit 1; }
    bash scripts/gpu/slurm/start-gpu-slurm.sh .gpu/kit/slurmkit.tgz 2>&1 | tee "$OUTDIR/slurm-start.log" | tail -5
    source /tmp/gslurm/env.sh
    python3 -m orchestrator validate --profile gpu-slurm "${SET[@]}" 2>&1 | tee "$OUTDIR/validate.log"
    python3 -m orchestrator submit --profile gpu-slurm --segments 2 "${SET[@]}" 2>&1 | tee "$OUTDIR/submit.log" ;;
  wait)
    source /tmp/gslurm/env.sh
    timeout "$2" python3 -m orchestrator status "$(newest)" --follow --interval 15 | tail -n 8 ;;
  collect)
    source /tmp/gslurm/env.sh
    run=$(newest); name=$(basename "$run")
    python3 -m orchestrator status "$run" | tee "$OUTDIR/status.txt"
    python3 -m orchestrator logs "$run" > "$OUTDIR/logs.txt" 2>&1
    python3 -m orchestrator report "$run" | tee "$OUTDIR/report.txt"
    python3 -m orchestrator report "$run" --json > "$OUTDIR/report.json"
    squeue; scontrol show job 2>/dev/null | grep -E 'JobId|JobState|Dependency|ExitCode' > "$OUTDIR/scontrol.txt"
    du -sh "$run/checkpoints" > "$OUTDIR/checkpoints.txt" 2>&1; ls "$run/checkpoints" >> "$OUTDIR/checkpoints.txt"
    tar czf "$OUTDIR/$name.logs.tgz" --exclude=checkpoints -C "$ROOT" "$name" ;;
  *) echo "usage: $0 start | wait SECONDS | collect" >&2; exit 2 ;;
esac
