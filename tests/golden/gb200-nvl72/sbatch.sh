#!/bin/bash
# Rendered by orchestrator 0.1.0 -- profile gb200-nvl72, recipe deepseek-v3.
# Every value below that reaches the shell is quoted by the renderer; secrets are passed by name only.
#SBATCH --job-name=deepseek-v3
#SBATCH --nodes=128
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --mem=0
#SBATCH --exclusive
#SBATCH --segment=16
#SBATCH --time=04:00:00
#SBATCH --signal=B:USR1@600
#SBATCH --requeue
#SBATCH --output=/runs/golden/logs/%x_%j.log
#SBATCH --open-mode=append
set -euo pipefail


echo "orchestrator: job ${SLURM_JOB_ID} on ${SLURM_JOB_NODELIST} (restart ${SLURM_RESTART_COUNT:-0})"
# The recipe's and the cluster's environment (also applied per rank by the node entry from job.json).
export CUDA_DEVICE_MAX_CONNECTIONS=32
export NVTE_FWD_LAYERNORM_SM_MARGIN=24
export NVTE_BWD_LAYERNORM_SM_MARGIN=24
export NVTE_ALLOW_NONDETERMINISTIC_ALGO=1
export NVTE_FUSED_ATTN=1
export NVTE_NORM_FWD_USE_CUDNN=1
export NVTE_NORM_BWD_USE_CUDNN=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
export NCCL_NVLS_ENABLE=0
export NCCL_DEBUG=WARN
export TORCH_NCCL_AVOID_RECORD_STREAMS=0
export NCCL_GRAPH_REGISTER=0
export PYTHONWARNINGS=ignore
export NCCL_MNNVL_ENABLE=1
export NCCL_CUMEM_ENABLE=1
# the node entry runs inside the container from the toolkit mounted read-only at the same path
export PYTHONPATH=/opt/toolkit${PYTHONPATH:+:$PYTHONPATH}
# WANDB_API_KEY is passed through from the submitting environment when set (never written here).
# HF_TOKEN is passed through from the submitting environment when set (never written here).
# HUGGING_FACE_HUB_TOKEN is passed through from the submitting environment when set (never written here).
# NGC_API_KEY is passed through from the submitting environment when set (never written here).

# Slurm's USR1 600 s before the time limit goes to srun, every rank, Megatron: save, then exit.
# The watchdog stops a step whose iterations stop; the retry step requeues a transient failure (node/retry.py).
started=$(date +%s)
checkpoint_before=$(python3 -m orchestrator.node.retry --spec /runs/golden/job.json --log /runs/golden/logs/%x_%j.log --retries 2 --backoff 60 --checkpoint-now)
srun --ntasks-per-node=4 --kill-on-bad-exit=1 --container-image=nvcr.io/nvidia/pytorch:25.09-py3 --container-mounts=/opt/toolkit/orchestrator:/opt/toolkit/orchestrator:ro,/runs/golden:/runs/golden --no-container-mount-home --container-writable \
    python3 -u -m orchestrator.node /runs/golden/job.json &
srun_pid=$!
trap 'kill -USR1 "$srun_pid" 2>/dev/null || true' USR1
python3 -m orchestrator.node.watchdog --spec /runs/golden/job.json --log /runs/golden/logs/%x_%j.log --factor 10.0 --floor 900 --startup 1800 --pid "$srun_pid" &
watchdog_pid=$!
while :; do
    status=0
    wait "$srun_pid" || status=$?
    if [ "$status" -gt 128 ] && kill -0 "$srun_pid" 2>/dev/null; then continue; fi
    break
done
kill "$watchdog_pid" 2>/dev/null || true
wait "$watchdog_pid" 2>/dev/null || true
python3 -m orchestrator.node.retry --spec /runs/golden/job.json --log /runs/golden/logs/%x_%j.log --retries 2 --backoff 60 --status "$status" --started "$started" --checkpoint-before "$checkpoint_before"
