#!/usr/bin/env bash
# A throwaway SLURM cluster on this machine, to try golf's SLURM path and to test it in CI.
#
#   scripts/slurm_local.sh install             # apt-get the packages below (once)
#   scripts/slurm_local.sh start [--nodes N]   # munge, MariaDB, slurmdbd, slurmctld and N slurmd "nodes"
#   scripts/slurm_local.sh status
#   scripts/slurm_local.sh stop [--wipe]       # --wipe also drops job state and the accounting database
# Exit status 3: this machine cannot host the cluster (not root, packages missing, a real cluster's config).
#
# Needs root on Debian/Ubuntu (it starts every daemon itself: no systemd needed, e.g. a container or a CI
# machine) and these packages (`install`):
#   slurmctld slurmd slurm-client slurmdbd munge mariadb-server, without their recommends (hdf5, ROCm, ...)
# The nodes are golf-n1..golf-nN, all on this host (127.0.0.1, slurmd ports 6821..), each with every CPU
# of the machine, in one partition `cpu`. No cgroups: CPU and memory limits are not enforced. Accounting
# (slurmdbd + MariaDB on 127.0.0.1:6820) is always on: without `sacct`, submitit cannot tell that a
# killed job is gone and waits for it forever. Daemons run at nice 19, and so do the jobs they start.
# `start` is idempotent: a cluster already running with the same config is left alone; another node
# count restarts slurmctld and the slurmds (job ids keep counting: the state dir is kept).
# Everything lives under $GOLF_SLURM_LOCAL_ROOT (default /var/tmp/golf-slurm) except
# /etc/slurm/{slurm,slurmdbd}.conf and one tagged line in /etc/hosts, which `stop` removes.
set -euo pipefail

ROOT=${GOLF_SLURM_LOCAL_ROOT:-/var/tmp/golf-slurm}
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
MARK="# written by golf scripts/slurm_local.sh"
HOSTS_TAG="# golf slurm_local"
DB_PORT=6820
FIRST_SLURMD_PORT=6821
PACKAGES="slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
HOST=$(hostname -s)

say() { echo "slurm_local: $*"; }
die() { echo "slurm_local: error: $*" >&2; exit 1; }
cannot() { echo "slurm_local: cannot start here: $*" >&2; exit 3; }  # exit 3: this machine cannot host it

alive() {  # alive PIDFILE: the daemon it names runs (after a reboot a stale file can name another process)
  local pid
  [[ -s $1 ]] && pid=$(cat "$1") && kill -0 "$pid" 2>/dev/null &&
    [[ $(cat "/proc/$pid/comm") =~ ^(munged|mariadbd|slurmctld|slurmd|slurmdbd)$ ]]
}

wait_until() {  # wait_until SECONDS WHAT COMMAND...: poll every 0.2 s
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not happen within the time limit; see the logs in $ROOT/log"
    sleep 0.2
  done
}

check_can_run() {
  [[ $(id -u) == 0 ]] || cannot "needs root (it starts daemons and writes /etc/slurm): sudo $0 start"
  local cmd missing=()
  for cmd in munged slurmctld slurmd slurmdbd sacct sbatch mariadbd mariadb-install-db; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  ((${#missing[@]} == 0)) || cannot "${missing[*]} not found; install the packages: sudo $0 install"
  if [[ -e $CONF ]] && ! grep -qxF "$MARK" "$CONF"; then
    cannot "$CONF exists and is not ours; this script will not overwrite a real cluster's config"
  fi
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "munge: already running"
    return
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge
  [[ -s /etc/munge/munge.key ]] || { mungekey --create && chown munge:munge /etc/munge/munge.key; }
  say "munge: starting munged"
  runuser -u munge -- nice -n 19 /usr/sbin/munged
  touch "$ROOT/munged.ours"  # stop ends munged only if this script started it
  wait_until 10 "munge authentication" bash -c "munge -n | unmunge"
}

db() { mariadb --protocol=socket --socket="$ROOT/mysqld/mysqld.sock" "$@"; }

start_database() {
  if alive "$ROOT/mysqld/mysqld.pid"; then
    say "mariadb: already running"
    return
  fi
  if [[ ! -d $ROOT/mysql/mysql ]]; then
    say "mariadb: creating the database dir $ROOT/mysql"
    mkdir -p "$ROOT/mysql" && chown mysql:mysql "$ROOT/mysql"
    mariadb-install-db --user=mysql --datadir="$ROOT/mysql" --auth-root-authentication-method=socket \
      --skip-test-db >"$ROOT/log/mariadb-install.log" 2>&1
  fi
  say "mariadb: starting on 127.0.0.1:$DB_PORT"
  mkdir -p "$ROOT/mysqld" && chown mysql:mysql "$ROOT/mysqld"  # its socket and pid file
  setsid nohup nice -n 19 /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$ROOT/mysql" \
    --pid-file="$ROOT/mysqld/mysqld.pid" --socket="$ROOT/mysqld/mysqld.sock" --bind-address=127.0.0.1 --port=$DB_PORT \
    --innodb-buffer-pool-size=64M >"$ROOT/log/mariadb.log" 2>&1 </dev/null &
  wait_until 30 "mariadb start" db -e "SELECT 1"
  db -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-local';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
  if alive "$ROOT/slurmdbd.pid"; then
    say "slurmdbd: already running"
    return
  fi
  cat >"$DBD_CONF" <<EOF
$MARK
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=$ROOT/log/slurmdbd.log
PidFile=$ROOT/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurm-local
EOF
  chmod 600 "$DBD_CONF"
  say "slurmdbd: starting (the first start creates the accounting tables)"
  nice -n 19 slurmdbd
  wait_until 60 "slurmdbd start" sacctmgr -n list cluster
}

write_slurm_conf() {  # write_slurm_conf NODES FILE
  local nodes=$1 cpus mem i
  cpus=$(nproc)
  mem=$(awk -v n="$nodes" '/^MemTotal/ {print int($2 / 1024 * 0.85 / n)}' /proc/meminfo)
  {
    echo "$MARK"
    cat <<EOF
ClusterName=golflocal
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job stays PENDING (BeginTime) until its credential expires: 120 s by default.
AuthInfo=cred_expire=10
MpiDefault=none
MailProg=/bin/true
# No cgroups in a container: track processes by parent pid, enforce nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without it a job that asks for no memory takes the whole node's, and jobs run one at a time.
DefMemPerCPU=1000
ReturnToService=2
StateSaveLocation=$ROOT/state
SlurmctldPidFile=$ROOT/slurmctld.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdSpoolDir=$ROOT/spool/%n
SlurmdPidFile=$ROOT/slurmd-%n.pid
SlurmdLogFile=$ROOT/log/slurmd-%n.log
# Several slurmd on one host: each takes its node's CPUs and memory from this file, not the hardware.
SlurmdParameters=config_overrides
MinJobAge=300
KillWait=10
InactiveLimit=0
Waittime=0
EOF
    for ((i = 1; i <= nodes; i++)); do
      echo "NodeName=golf-n$i NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((FIRST_SLURMD_PORT + i - 1))" \
        "CPUs=$cpus RealMemory=$mem State=UNKNOWN"
    done
    echo "PartitionName=cpu Nodes=golf-n[1-$nodes] Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
  } >"$2"
}

node_names() { grep -o '^NodeName=[^ ]*' "$CONF" | cut -d= -f2; }

nodes_up() {  # nodes_up N: sinfo reports N nodes that take jobs
  [[ $(sinfo -h -N -o %T | grep -cE '^(idle|mixed|allocated|completing)$') == "$1" ]]
}

drop_hosts_line() {  # rewritten in place, not replaced: /etc/hosts is often a bind mount in containers
  local kept
  kept=$(grep -v "$HOSTS_TAG\$" /etc/hosts || true)
  printf '%s\n' "$kept" >/etc/hosts
}

stop_pids() {  # stop_pids PIDFILE...: SIGTERM all at once, wait for each to exit (SIGKILL after 30 s)
  local file pids=()
  for file in "$@"; do
    if alive "$file"; then pids+=("$(cat "$file")"); fi
  done
  ((${#pids[@]})) || return 0
  kill "${pids[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "${pids[@]}" 2>/dev/null; do
    if ((SECONDS >= deadline)); then kill -9 "${pids[@]}" 2>/dev/null || true; fi
    sleep 0.2
  done
}

stop_slurm() {  # cancel every job, then stop slurmctld and the slurmds
  alive "$ROOT/slurmctld.pid" || [[ -n $(compgen -G "$ROOT/slurmd-*.pid") ]] || return 0
  if alive "$ROOT/slurmctld.pid"; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      say "cancelling jobs $(echo $jobs)"
      scancel $jobs 2>/dev/null || true
    fi
    local deadline=$((SECONDS + 20))
    while [[ -n $(squeue -h -t RUNNING,COMPLETING -o %A 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 0.2; done
  fi
  say "stopping slurmctld and slurmd"
  stop_pids "$ROOT/slurmctld.pid" "$ROOT"/slurmd-*.pid
}

install_slurm_conf() {  # install_slurm_conf NODES: stop slurmctld and the slurmds first if it changes
  local wanted
  wanted=$(mktemp)
  write_slurm_conf "$1" "$wanted"
  if cmp -s "$wanted" "$CONF"; then
    rm -f "$wanted"
    return
  fi
  stop_slurm
  say "writing $CONF ($1 node(s))"
  install -m 644 "$wanted" "$CONF"
  rm -f "$wanted"
}

start_slurm() {  # start_slurm NODES
  local name
  if alive "$ROOT/slurmctld.pid"; then
    say "slurmctld: already running"
  else
    say "slurmctld: starting (cluster golflocal, partition cpu)"
    nice -n 19 slurmctld
  fi
  # Jobs see their nodes' names (torchrun's rendezvous host is one): make them resolve to this host.
  drop_hosts_line
  echo "127.0.0.1 $(node_names | tr '\n' ' ')$HOSTS_TAG" >>/etc/hosts
  for name in $(node_names); do
    if alive "$ROOT/slurmd-$name.pid"; then
      say "slurmd: node $name already running"
    else
      say "slurmd: starting node $name"
      mkdir -p "$ROOT/spool/$name"
      nice -n 19 slurmd -N "$name"
    fi
  done
  wait_until 60 "all $1 node(s) up" nodes_up "$1"
  wait_until 30 "accounting (sacct)" sacct -n -X
}

install_packages() {
  [[ $(id -u) == 0 ]] || die "needs root: sudo $0 install"
  say "apt-get install $PACKAGES"
  apt-get update -qq
  # The daemons' postinst scripts try to start them; without systemd that is refused, which is fine.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
}

start() {
  local nodes=1
  while (($#)); do
    case $1 in
      --nodes) nodes=${2:?--nodes needs a number}; shift 2 ;;
      *) die "unknown option $1 (start takes --nodes N)" ;;
    esac
  done
  [[ $nodes =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive integer, got $nodes"
  check_can_run
  mkdir -p "$ROOT"/{state,spool,log}
  start_munge
  start_database
  install_slurm_conf "$nodes"  # before slurmdbd: sacctmgr finds slurmdbd through it
  start_slurmdbd
  if ! sacctmgr -n list cluster format=cluster | grep -qw golflocal; then
    sacctmgr -i add cluster golflocal >/dev/null
  fi
  start_slurm "$nodes"
  say "up: $(sinfo -h -o '%P %D node(s) %T' | tr '\n' ' ')- try: sbatch --wrap hostname; squeue; sacct"
}

stop() {
  local wipe=0
  case ${1:-} in
    --wipe) wipe=1 ;;
    "") ;;
    *) die "unknown option $1 (stop takes --wipe)" ;;
  esac
  [[ $(id -u) == 0 ]] || die "must run as root"
  stop_slurm
  say "stopping slurmdbd and mariadb"
  stop_pids "$ROOT/slurmdbd.pid"
  stop_pids "$ROOT/mysqld/mysqld.pid"
  if [[ -e $ROOT/munged.ours ]]; then
    say "stopping munged"
    stop_pids /run/munge/munged.pid
    rm -f "$ROOT/munged.ours"
  fi
  drop_hosts_line
  if ((wipe)); then
    say "wiping $ROOT and the config files"
    rm -rf "$ROOT"
    for file in "$CONF" "$DBD_CONF"; do
      if [[ -e $file ]] && grep -qxF "$MARK" "$file"; then rm -f "$file"; fi
    done
  fi
  say "stopped"
}

status() {
  local file
  for file in "$ROOT"/mysqld/mysqld.pid "$ROOT"/slurmdbd.pid "$ROOT"/slurmctld.pid "$ROOT"/slurmd-*.pid; do
    [[ -e $file ]] || continue
    if alive "$file"; then echo "$(basename "$file" .pid): running"; else echo "$(basename "$file" .pid): stopped"; fi
  done
  if alive "$ROOT/slurmctld.pid"; then sinfo; fi
}

case ${1:-} in
  install) install_packages ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  status) status ;;
  *) echo "usage: $0 install | start [--nodes N] | stop [--wipe] | status" >&2; exit 2 ;;
esac
