#!/bin/bash
# Install what scripts/slurm/start-slurm.sh needs on Debian 12 (bookworm):
#   Slurm 22.05 (slurmctld, slurmd, client tools), munge, slurmdbd, MariaDB (for sacct).
# No service is started by the packages (no systemd); start-slurm.sh starts every daemon itself.
# Usage (root):  scripts/slurm/install-deps.sh [MORE_PACKAGE...]       (~20 s on a 2-core VM)
set -euo pipefail
PKGS=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server "$@")
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" = 0 ]; then
  echo "install-deps: all present: ${PKGS[*]}"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "install-deps: must run as root (missing: ${missing[*]})" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed ${missing[*]}"
# Python side (login host / test venv): pip install submitit==1.5.4
