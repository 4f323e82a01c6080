#!/bin/bash
# DeepSeek-V3 pre-training with Megatron-Core on Slurm -- the guide's entry point.
#   1. fill the variables of the environment block below (or export them in your shell);
#   2. bash run.sh            (DRY_RUN=1 bash run.sh prints every rendered file and submits nothing)
# Written by `orchestrator render --profile local --run-sh FILE`; everything past the block is the
# same for every cluster: it hands the variables to the orchestrator, which validates, renders and submits.
set -euo pipefail

# >>> environment (rendered by orchestrator 0.1.0 for profile local) >>>
# Fill every variable marked FILL; an empty required variable stops run.sh with a message naming it.
# A variable already set in your shell wins over the value written here.
PROFILE=${PROFILE:-local}  # cluster profile: orchestrator profiles lists them
RECIPE=${RECIPE:-''}  # recipe; empty = the profile's default_recipe (orchestrator recipes lists them)
NNODES=${NNODES:-''}  # nodes per job; empty = the profile's
ACCOUNT=${ACCOUNT:-''}  # Slurm account
PARTITION=${PARTITION:-''}  # Slurm partition
TIME_LIMIT=${TIME_LIMIT:-01:00:00}  # wall-clock limit per job, HH:MM:SS
CONTAINER_IMAGE=${CONTAINER_IMAGE:-''}  # container image (squashfs or registry URI)
CONTAINER_MOUNTS=${CONTAINER_MOUNTS:-''}  # container mounts, SRC:DST,SRC:DST
MEGATRON_PATH=${MEGATRON_PATH:-''}  # Megatron-LM checkout in the container; empty = bundled entry
DATA_PATH=${DATA_PATH:-''}  # dataset prefixes (space separated); empty = mock data
TOKENIZER_MODEL=${TOKENIZER_MODEL:-''}  # tokenizer path or HF name; empty = NullTokenizer
OUTPUT_DIR=${OUTPUT_DIR:-runs}  # where run directories, logs and checkpoints go
BINDPCIE_PATH=${BINDPCIE_PATH:-''}  # NVIDIA mlperf-common bindpcie; empty = built-in binding
WANDB_PROJECT=${WANDB_PROJECT:-''}  # W&B project; the key is read from $WANDB_API_KEY
EXTRA_SET=${EXTRA_SET:-''}  # more overrides, space separated KEY=VALUE (e.g. parallel.pp=4)
DRY_RUN=${DRY_RUN:-''}  # 1 = print every rendered file and submit nothing
# <<< environment <<<

export PROFILE RECIPE NNODES ACCOUNT PARTITION TIME_LIMIT CONTAINER_IMAGE CONTAINER_MOUNTS MEGATRON_PATH DATA_PATH TOKENIZER_MODEL OUTPUT_DIR BINDPCIE_PATH WANDB_PROJECT EXTRA_SET DRY_RUN 

cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import orchestrator, jinja2, yaml, click' 2>/dev/null; then
    echo "run.sh: the orchestrator is not importable by $PYTHON (fix: pip install -e . in this directory)" >&2
    exit 2
fi
exec "$PYTHON" -m orchestrator runsh
