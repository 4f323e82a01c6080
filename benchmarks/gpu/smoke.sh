#!/usr/bin/env bash
# ON THE GPU MACHINE (device kind nvidia-h200-x2), from the repo root, once .gpu/c1 .. .gpu/c5 and
# .gpu/w are there (benchmarks/gpu/README.md says how they travel):
#   bash benchmarks/gpu/smoke.sh [ARGS_FILE] [NPROC]
# 1. scripts/gpu/setup-remote.sh (idempotent), 2. an import check of megatron.core, megatron.training
# and transformer_engine, 3. `torchrun --nproc-per-node NPROC -m orchestrator.train <ARGS_FILE>`.
# Logs go to $OUT (the device tool's output folder) or .gpu/smoke-out: setup.log, smoke.log, summary.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
ARGS_FILE=${1:-benchmarks/gpu/dsv3-proxy-bf16.args}
NPROC=${2:-2}
LOGS=${OUT:-.gpu/smoke-out}
RUN_TIMEOUT=${RUN_TIMEOUT:-360}
mkdir -p "$LOGS"

SECONDS=0
bash scripts/gpu/setup-remote.sh 2>&1 | tee "$LOGS/setup.log"
[[ ${PIPESTATUS[0]} == 0 ]] || { echo "smoke: setup failed" | tee -a "$LOGS/setup.log"; exit 1; }
setup_s=$SECONDS
# shellcheck source=../../scripts/gpu/env.sh
source scripts/gpu/env.sh
{
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
  env | grep -E '^(NCCL_NVLS_ENABLE|TORCH_SYMM_MEM_DISABLE_MULTICAST|NVSHMEM_DISABLE_NVLS|NVTE_FRAMEWORK)=' | sort
} 2>&1 | tee -a "$LOGS/setup.log"
python3 - <<'PY' 2>&1 | tee -a "$LOGS/setup.log"
import time
start = time.time()
import torch, megatron.core, megatron.training, transformer_engine, transformer_engine.pytorch  # noqa: E401
from importlib.metadata import version
print(f"import check ok in {time.time() - start:.1f} s: torch {torch.__version__}, "
      f"megatron-core {version('megatron-core')}, transformer-engine {transformer_engine.__version__}, "
      f"{torch.cuda.device_count()} GPUs")
PY
[[ ${PIPESTATUS[0]} == 0 ]] || { echo "smoke: import check failed" | tee -a "$LOGS/setup.log"; exit 1; }
import_s=$((SECONDS - setup_s))

read -ra ARGS <<< "$(grep -v '^[[:space:]]*#' "$ARGS_FILE" | tr '\n' ' ')"
TORCHRUN=(torchrun)
command -v torchrun >/dev/null || TORCHRUN=(python3 -m torch.distributed.run)
echo "smoke: ${TORCHRUN[*]} --nproc-per-node $NPROC -m orchestrator.train ${ARGS[*]}" | tee "$LOGS/smoke.log"
timeout -k 15 "$RUN_TIMEOUT" "${TORCHRUN[@]}" --nproc-per-node "$NPROC" -m orchestrator.train "${ARGS[@]}" \
  2>&1 | tee -a "$LOGS/smoke.log"
rc=${PIPESTATUS[0]}
run_s=$((SECONDS - setup_s - import_s))

python3 benchmarks/gpu/summarize.py "$LOGS/smoke.log" | tee "$LOGS/summary.txt"
echo "smoke: exit $rc; setup ${setup_s} s, import check ${import_s} s, training run ${run_s} s" \
  | tee -a "$LOGS/summary.txt"
exit "$rc"
