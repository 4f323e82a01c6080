#!/bin/bash
# Stop everything start-slurm.sh started, by the pids in STATE/run (never by process name).
# Usage: scripts/slurm/stop-slurm.sh [STATE_DIR]     (default: $ORCH_SLURM_STATE or /tmp/orchestrator-slurm)
# ORCH_SLURM_KEEP_HOSTS=1 leaves the /etc/hosts line start-slurm.sh added.
STATE=${1:-${ORCH_SLURM_STATE:-/tmp/orchestrator-slurm}}
export SLURM_CONF=$STATE/etc/slurm.conf PATH=$PATH:/usr/sbin

# a zombie counts as gone: daemons are re-parented to PID 1, which may reap them only later
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }
stop_pid() {  # stop_pid PID NAME: TERM, wait up to 15 s, then KILL
  local pid=$1 name=$2 i
  alive "$pid" || return 0
  kill -TERM "$pid"
  for i in $(seq 150); do alive "$pid" || { echo "stop-slurm: stopped $name ($pid)"; return 0; }; sleep 0.1; done
  echo "stop-slurm: SIGKILL $name ($pid)"
  kill -KILL "$pid" 2>/dev/null
}
cancel_jobs() {  # otherwise their slurmstepd's outlive slurmd
  [ -f "$STATE/run/slurmctld.pid" ] && timeout 5 scontrol ping >/dev/null 2>&1 || return 0
  local jobs i
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
  [ -z "$jobs" ] && return 0
  scancel $jobs
  for i in $(seq 75); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.2; done
}
drop_hosts_line() {  # rewrite in place: /etc/hosts may be a bind mount
  [ "${ORCH_SLURM_KEEP_HOSTS:-0}" = 1 ] && return 0
  grep -qF "# orchestrator-slurm $STATE" /etc/hosts 2>/dev/null || return 0
  local h
  h=$(grep -vF "# orchestrator-slurm $STATE" /etc/hosts)
  printf '%s\n' "$h" > /etc/hosts
}

[ -d "$STATE/run" ] || { echo "stop-slurm: nothing in $STATE"; exit 0; }
cancel_jobs
for f in "$STATE"/run/slurmd-*.pid; do [ -f "$f" ] && stop_pid "$(cat "$f")" "$(basename "$f" .pid)"; done
for d in slurmctld slurmdbd mariadb munged; do
  [ -f "$STATE/run/$d.pid" ] && stop_pid "$(cat "$STATE/run/$d.pid")" "$d"
done
drop_hosts_line
exit 0
