#!/bin/bash
# The test suite: mypy --strict over the toolkit, then unit tests (no Slurm) and end-to-end tests against a real
# local Slurm cluster, which the e2e fixtures start (scripts/slurm/start-slurm.sh) and stop again unless one is
# already running. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=$PATH:/usr/sbin
PY=${PYTHON:-python3}
"$PY" -m mypy --strict orchestrator
exec "$PY" -m pytest -q -rfER -p no:cacheprovider tests "$@"   # -rfER: failures and reruns by name
