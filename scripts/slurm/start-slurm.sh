#!/bin/bash
# Start a throw-away Slurm cluster on this one host (Debian 12 packages, Slurm 22.05):
#   private munged -> [MariaDB -> slurmdbd] -> slurmctld -> one slurmd per fake node (n1..nN on 127.0.0.1)
# Config, state, logs, pid files and the database live in the state dir, which is wiped on every start
# (controller state and accounting DB together, so job ids restart at 1 consistently).
#
# Settings (environment variables, defaults in brackets):
#   ORCH_SLURM_STATE           state dir [/tmp/orchestrator-slurm]
#   ORCH_SLURM_ACCOUNTING      1 = MariaDB + slurmdbd, sacct works; 0 = no accounting [1]
#   ORCH_SLURM_MAX_ARRAY_SIZE  MaxArraySize [1001, Slurm's default]
#   ORCH_SLURM_MAX_JOB_COUNT   MaxJobCount: job records slurmctld holds [max(4 x MaxArraySize, 50000): a sweep of
#                              10,000 one-second tasks keeps ~10,000 ended records for MinJobAge (300 s)]
#   ORCH_SLURM_NODES           number of fake nodes [2]
#   ORCH_SLURM_GPUS            fake GPUs per node, >= 1 [8]
#   ORCH_SLURM_CPUS            CPUs advertised per node (may exceed the real cores) [8]
#   ORCH_SLURM_MEM_MB          memory advertised per node, not enforced [2000000]
#   ORCH_SLURM_CTLD_PORT / ORCH_SLURM_DBD_PORT / ORCH_SLURM_SLURMD_PORT   [6817 / 6819 / 17001..]
#   ORCH_SLURM_ETC_HOSTS       1 = add "127.0.0.1 n1 n2 ..." to /etc/hosts when the names do not resolve [1]
#   ORCH_SLURM_CLUSTER         ClusterName [orchestrator]
# Afterwards:  source "$ORCH_SLURM_STATE/env.sh"    (exports SLURM_CONF; every client needs it)
# Stop with:   scripts/slurm/stop-slurm.sh [STATE_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${ORCH_SLURM_STATE:-/tmp/orchestrator-slurm}
ACCOUNTING=${ORCH_SLURM_ACCOUNTING:-1}
MAX_ARRAY_SIZE=${ORCH_SLURM_MAX_ARRAY_SIZE:-1001}
NUM_NODES=${ORCH_SLURM_NODES:-2}
GPUS=${ORCH_SLURM_GPUS:-8}
CPUS=${ORCH_SLURM_CPUS:-8}
MEM_MB=${ORCH_SLURM_MEM_MB:-2000000}
CTLD_PORT=${ORCH_SLURM_CTLD_PORT:-6817}
DBD_PORT=${ORCH_SLURM_DBD_PORT:-6819}
SLURMD_PORT=${ORCH_SLURM_SLURMD_PORT:-17001}
ETC_HOSTS=${ORCH_SLURM_ETC_HOSTS:-1}
CLUSTER=${ORCH_SLURM_CLUSTER:-orchestrator}
MAX_JOB_COUNT=${ORCH_SLURM_MAX_JOB_COUNT:-$(( MAX_ARRAY_SIZE * 4 > 50000 ? MAX_ARRAY_SIZE * 4 : 50000 ))}
export PATH=$PATH:/usr/sbin

t0=${EPOCHREALTIME/./}
log() { local ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 )); printf '[start-slurm %3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"; }
fail() { echo "start-slurm: ERROR: $*" >&2; exit 2; }   # bad settings: nothing was touched
die() {   # a daemon did not come up: show its logs, stop what was started
  echo "start-slurm: ERROR: $*" >&2
  for f in "$STATE"/log/*; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  "$HERE/stop-slurm.sh" "$STATE" >&2 || true
  exit 1
}
wait_for() {  # wait_for SECONDS WHAT COMMAND...   (shell functions run without `timeout`)
  local end=$(( SECONDS + $1 )) what=$2; shift 2
  local to=(timeout 10); declare -F "$1" >/dev/null && to=()
  until "${to[@]}" "$@" >/dev/null 2>&1; do
    (( SECONDS < end )) || die "timeout waiting for $what"
    sleep 0.2
  done
}

check_settings() {
  local v
  for v in ACCOUNTING ETC_HOSTS; do [[ ${!v} =~ ^[01]$ ]] || fail "ORCH_SLURM_$v must be 0 or 1 (got '${!v}')"; done
  local -A names=([MAX_ARRAY_SIZE]=MAX_ARRAY_SIZE [MAX_JOB_COUNT]=MAX_JOB_COUNT [NUM_NODES]=NODES [GPUS]=GPUS [CPUS]=CPUS [MEM_MB]=MEM_MB
                  [CTLD_PORT]=CTLD_PORT [DBD_PORT]=DBD_PORT [SLURMD_PORT]=SLURMD_PORT)
  for v in "${!names[@]}"; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || fail "ORCH_SLURM_${names[$v]} must be a positive integer (got '${!v}')"
  done
  local bins=(munged munge slurmctld slurmd sinfo scontrol) b
  [ "$ACCOUNTING" = 1 ] && bins+=(mariadbd mariadb-install-db mariadb slurmdbd sacctmgr)
  for b in "${bins[@]}"; do
    command -v "$b" >/dev/null || fail "$b missing: run scripts/slurm/install-deps.sh"
  done
}

subst() {  # subst TEMPLATE OUTPUT
  local nodes="n[1-$NUM_NODES]" ports="[$SLURMD_PORT-$(( SLURMD_PORT + NUM_NODES - 1 ))]"
  [ "$NUM_NODES" = 1 ] && { nodes=n1; ports=$SLURMD_PORT; }
  local acct=accounting_storage/none; [ "$ACCOUNTING" = 1 ] && acct=accounting_storage/slurmdbd
  sed -e "s#@STATE@#$STATE#g; s#@CLUSTER@#$CLUSTER#g; s#@NUM_NODES@#$NUM_NODES#g" \
      -e "s#@NODES@#$nodes#g; s#@NODE_PORTS@#$ports#g; s#@CPUS@#$CPUS#g; s#@GPUS@#$GPUS#g" \
      -e "s#@GPU_MAX_IDX@#$(( GPUS - 1 ))#g; s#@MEM_MB@#$MEM_MB#g; s#@ACCT_TYPE@#$acct#g" \
      -e "s#@CTLD_PORT@#$CTLD_PORT#g; s#@SLURMD_PORT@#$SLURMD_PORT#g; s#@DBD_PORT@#$DBD_PORT#g" \
      -e "s#@MAX_ARRAY_SIZE@#$MAX_ARRAY_SIZE#g; s#@MAX_JOB_COUNT@#$MAX_JOB_COUNT#g" "$1" > "$2"
}

write_config() {
  [ -d "$STATE/run" ] && "$HERE/stop-slurm.sh" "$STATE"   # a previous instance on this state dir
  rm -rf "$STATE"
  mkdir -p "$STATE"/{etc,run,log,ctld,spool,munge,fakegpu,mysql}
  subst "$HERE/slurm.conf.in" "$STATE/etc/slurm.conf"
  if [ "$ACCOUNTING" = 1 ]; then
    sed -i '/^#@ACCOUNTING$/d' "$STATE/etc/slurm.conf"
  else
    sed -i '/^#@ACCOUNTING$/,/^#@ACCOUNTING$/d' "$STATE/etc/slurm.conf"
  fi
  subst "$HERE/gres.conf.in" "$STATE/etc/gres.conf"
  if [ "$ACCOUNTING" = 1 ]; then
    subst "$HERE/slurmdbd.conf.in" "$STATE/etc/slurmdbd.conf"
    chmod 600 "$STATE/etc/slurmdbd.conf"     # slurmdbd refuses a readable file
  fi
  local i
  for (( i = 0; i < GPUS; i++ )); do ln -s /dev/null "$STATE/fakegpu/nvidia$i"; done
  for (( i = 1; i <= NUM_NODES; i++ )); do mkdir -p "$STATE/spool/n$i"; done
  export SLURM_CONF=$STATE/etc/slurm.conf
  log "config written to $STATE/etc (accounting=$ACCOUNTING MaxArraySize=$MAX_ARRAY_SIZE MaxJobCount=$MAX_JOB_COUNT nodes=$NUM_NODES gpus/node=$GPUS)"
}

resolve_node_names() {  # MASTER_ADDR is the first node name (n1): it must resolve
  local missing="" i
  for (( i = 1; i <= NUM_NODES; i++ )); do getent hosts "n$i" >/dev/null || missing+=" n$i"; done
  [ -z "$missing" ] && return 0
  if [ "$ETC_HOSTS" = 1 ] && [ -w /etc/hosts ]; then
    echo "127.0.0.1$missing  # orchestrator-slurm $STATE" >> /etc/hosts
    log "added to /etc/hosts:$missing"
  else
    log "WARNING:$missing do not resolve (run as root with ORCH_SLURM_ETC_HOSTS=1)"
  fi
}

start_munge() {
  local sock=$STATE/munge/munge.sock
  dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
  chmod 600 "$STATE/munge/munge.key"
  munged --key-file="$STATE/munge/munge.key" --socket="$sock" --pid-file="$STATE/run/munged.pid" \
         --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/munged.seed" </dev/null
  wait_for 10 munged sh -c "munge -S '$sock' -n | unmunge -S '$sock'"
  log "munged up (pid $(cat "$STATE/run/munged.pid"))"
}

start_accounting() {
  local opts=(--no-defaults --user=root --datadir="$STATE/mysql/data" --innodb-log-file-size=16M)
  mariadb-install-db "${opts[@]}" --auth-root-authentication-method=socket --skip-test-db \
      > "$STATE/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
  setsid mariadbd "${opts[@]}" --socket="$STATE/mysql/mysql.sock" --skip-networking \
      --pid-file="$STATE/run/mariadb.pid" --log-error="$STATE/log/mariadb.log" \
      --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  wait_for 30 mariadb mariadb -S "$STATE/mysql/mysql.sock" -e 'select 1'
  log "mariadb up (pid $(cat "$STATE/run/mariadb.pid"))"
  MYSQL_UNIX_PORT="$STATE/mysql/mysql.sock" slurmdbd </dev/null   # daemonizes
  wait_for 30 slurmdbd sacctmgr -n show cluster
  log "slurmdbd up (pid $(cat "$STATE/run/slurmdbd.pid"))"
}

all_nodes_idle() {
  [ "$(sinfo -h -N -o '%t' | sort -u)" = idle ] && [ "$(sinfo -h -N -o '%N' | wc -l)" = "$NUM_NODES" ]
}
add_associations() {  # AccountingStorageEnforce=associations,qos: a user without one cannot submit
  local users=root
  [ "$(id -un)" != root ] && users+=",$(id -un)"
  sacctmgr -i add account "$CLUSTER" cluster="$CLUSTER" description=tests organization=orchestrator >/dev/null
  sacctmgr -i add user "$users" account="$CLUSTER" cluster="$CLUSTER" >/dev/null
  wait_for 30 "slurmctld to know the associations" sh -c \
      "scontrol show assoc_mgr users=root flags=assoc | grep -q 'Account=$CLUSTER'"
  log "associations: users $users in account '$CLUSTER' (AccountingStorageEnforce=associations,qos)"
}
cluster_registered() {
  sacctmgr -n -P show cluster format=cluster,controlport | grep -q "^$CLUSTER|$CTLD_PORT\$"
}

start_slurm() {
  slurmctld </dev/null   # daemonizes
  wait_for 30 slurmctld scontrol ping
  log "slurmctld up (pid $(cat "$STATE/run/slurmctld.pid"))"
  local i
  for (( i = 1; i <= NUM_NODES; i++ )); do slurmd -N "n$i" </dev/null; done
  wait_for 60 "all nodes idle" all_nodes_idle
  log "slurmd x$NUM_NODES up: $(sinfo -h -N -o '%N:%t:%G' | tr '\n' ' ')"
  if [ "$ACCOUNTING" = 1 ]; then
    wait_for 30 "cluster registration in slurmdbd" cluster_registered
    log "cluster '$CLUSTER' registered in slurmdbd"
    add_associations
  fi
}

write_env_file() {
  cat > "$STATE/env.sh" <<EOS
# written by scripts/slurm/start-slurm.sh; source it before sbatch/sacct/orchestrator
export SLURM_CONF=$SLURM_CONF
export ORCH_SLURM_STATE=$STATE
case ":\$PATH:" in *:/usr/sbin:*) ;; *) export PATH=\$PATH:/usr/sbin ;; esac
EOS
}

check_settings
write_config
resolve_node_names
start_munge
[ "$ACCOUNTING" = 1 ] && start_accounting
start_slurm
write_env_file
log "ready.  source $STATE/env.sh   (SLURM_CONF=$SLURM_CONF)"
