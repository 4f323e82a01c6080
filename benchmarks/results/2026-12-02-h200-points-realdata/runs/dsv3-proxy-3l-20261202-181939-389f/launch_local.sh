#!/bin/bash
# Rendered by orchestrator 0.1.0 -- profile local, recipe dsv3-proxy-3l.
# Local back-end: one process per rank on this machine, through the same node entry a Slurm task runs.
set -uo pipefail
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
export TORCH_SYMM_MEM_DISABLE_MULTICAST=1
export NVSHMEM_DISABLE_NVLS=1
export MASTER_ADDR=127.0.0.1 MASTER_PORT="${MASTER_PORT:-29317}"
export WORLD_SIZE=1 LOCAL_WORLD_SIZE=1
pids=()
for ((rank = 0; rank < 1; rank++)); do
    RANK=$rank LOCAL_RANK=$rank python3 -u -m orchestrator.node /work/main/.gpu/runs/realdata/dsv3-proxy-3l-20261202-181939-389f/job.json &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
