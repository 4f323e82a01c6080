# Source ON THE GPU MACHINE (bash), after scripts/gpu/setup-remote.sh:  source scripts/gpu/env.sh
# Puts .gpu/site (megatron-core, Transformer Engine) and the repo on PYTHONPATH and keeps NVLink
# multicast off: these machines' hosts share GPUs, and a program that uses multicast can take them
# out of service (/work/.library/device/KINDS.md). Always keep the three *NVLS*/MULTICAST variables set.
_orch_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PYTHONPATH="$_orch_repo/.gpu/site:$_orch_repo${PYTHONPATH:+:$PYTHONPATH}"
export NCCL_NVLS_ENABLE=0
export TORCH_SYMM_MEM_DISABLE_MULTICAST=1
export NVSHMEM_DISABLE_NVLS=1
# Only the PyTorch side of Transformer Engine: a missing PyTorch extension is an error, not a warning.
export NVTE_FRAMEWORK=pytorch
export PYTHONUNBUFFERED=1
unset _orch_repo
