#!/bin/bash
# The Python >= 3.12 environment in which Megatron's own argument check runs (megatron.training needs 3.12; this
# machine's default Python is 3.11): a venv with megatron-core and torch, used by `orchestrator validate`/`submit`,
# by the CPU payload of the e2e tests and by the test suite. Idempotent: an environment that already imports
# megatron.training at the pinned version is kept. Fails loudly when no Python >= 3.12 is found.
# Usage: scripts/megatron-env.sh            (prints the environment's python on its last line)
#   ORCHESTRATOR_MEGATRON_VENV   where the venv lives (default: orchestrator.node.megatron_check.DEFAULT_VENV)
#   PYTHON312                    the interpreter to build it from (default: python3.12, else pyenv's 3.12.x)
set -euo pipefail
MCORE=0.19.2 TORCH=2.13.0
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${ORCHESTRATOR_MEGATRON_VENV:-$("${PYTHON:-python3}" -c 'from orchestrator.node.megatron_check import DEFAULT_VENV; print(DEFAULT_VENV)')}
if "$VENV/bin/python" -c "import megatron.core, megatron.training.arguments as _; import sys;
from importlib.metadata import version; sys.exit(version('megatron-core') != '$MCORE')" 2>/dev/null; then
  echo "megatron-env: $VENV has megatron-core $MCORE"; echo "$VENV/bin/python"; exit 0
fi
py=""
for candidate in ${PYTHON312:-} "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9].*/bin/python "$(command -v python3.12 || true)"; do
  if [ -x "$candidate" ] && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    py=$candidate; break
  fi
done
if [ -z "$py" ]; then
  echo "megatron-env: no Python >= 3.12 found (PYTHON312, pyenv's 3.12.x or python3.12 on PATH); Megatron's own" \
       "argument check cannot run: install one (pyenv install 3.12) or set PYTHON312" >&2
  exit 1
fi
rm -rf "$VENV"; mkdir -p "$(dirname "$VENV")"
"$py" -m venv "$VENV"
# torch from PyPI is a CUDA build; it imports and validates without a GPU (Megatron's GPU queries are answered
# by the harness, orchestrator/node/megatron_check.py)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==$TORCH" "megatron-core==$MCORE" 2>&1 \
  | grep -v -e "Location 'file:" -e 'Running pip as the' || true
"$VENV/bin/python" -W ignore -c "import megatron.training.arguments" 2>/dev/null \
  || { echo "megatron-env: $VENV cannot import megatron.training" >&2; exit 1; }
echo "megatron-env: $VENV: megatron-core $MCORE, torch $TORCH, $("$VENV/bin/python" -V)"
echo "$VENV/bin/python"
