#!/bin/bash
# Everything the toolkit and its tests need on a fresh Debian 12 machine (root): idempotent, ~1-3 min.
#   apt: Slurm 22.05 + munge + slurmdbd + MariaDB (scripts/slurm/install-deps.sh)
#   apt: shellcheck (the tests run it over every rendered script), numactl (bindpcie's binding)
#   pip: the toolkit itself (editable) with its test extras, a CPU torch for the rendezvous payload, and
#        megatron-core (0.16.1 on Python 3.11: megatron.core only; megatron.training needs >= 0.17 on Python 3.12)
#   Python 3.12: scripts/megatron-env.sh, the environment of Megatron's own argument check (fails when no
#        Python >= 3.12 is found)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/slurm/install-deps.sh shellcheck numactl
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]' 'torch==2.13.0' 'megatron-core==0.16.1' 2>&1 \
    | grep -v -e "Location 'file:" -e 'Running pip as the' || true
"$PY" -c 'import orchestrator, submitit, torch, jinja2, hypothesis; print("install-deps: python side ok, torch", torch.__version__)'
bash scripts/megatron-env.sh
