#!/bin/bash
# Rendered by orchestrator 0.1.0 -- profile gpu-slurm, recipe dsv3-proxy-small.
# Every value below that reaches the shell is quoted by the renderer; secrets are passed by name only.
#SBATCH --job-name=dsv3-proxy-small
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:1
#SBATCH --partition=debug
#SBATCH --time=00:04:00
#SBATCH --output=/work/main/.gpu/runs/dsv3-proxy-small-20261202-131008-b192/logs/%x_%j.log
#SBATCH --open-mode=append
#SBATCH --dependency=afterok:2
set -euo pipefail


echo "orchestrator: job ${SLURM_JOB_ID} on ${SLURM_JOB_NODELIST} (restart ${SLURM_RESTART_COUNT:-0})"
# The recipe's and the cluster's environment (also applied per rank by the node entry from job.json).
export CUDA_DEVICE_MAX_CONNECTIONS=1
export NVTE_FWD_LAYERNORM_SM_MARGIN=0
export NVTE_BWD_LAYERNORM_SM_MARGIN=0
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
# WANDB_API_KEY is passed through from the submitting environment when set (never written here).
# HF_TOKEN is passed through from the submitting environment when set (never written here).
# HUGGING_FACE_HUB_TOKEN is passed through from the submitting environment when set (never written here).
# NGC_API_KEY is passed through from the submitting environment when set (never written here).

srun --ntasks-per-node=1 --kill-on-bad-exit=1 \
    python3 -u -m orchestrator.node /work/main/.gpu/runs/dsv3-proxy-small-20261202-131008-b192/job.json
