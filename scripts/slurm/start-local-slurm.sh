#!/usr/bin/env bash
# Bring up (idempotently) a real single-node SLURM cluster on 127.0.0.1 only, for testing
# the Snakemake -> SLURM path (profiles/slurm, tests/slurm).  Debian 12, run as root.
#
#   bash scripts/slurm/start-local-slurm.sh     # ~20 s from nothing, ~2 s when already up
#   bash scripts/slurm/stop-local-slurm.sh      # stop every daemon (state is kept)
#
# What it does: installs missing Debian packages (slurmctld, slurmd, slurm-client, munge;
# with accounting also slurmdbd + mariadb-server); writes /etc/slurm/{slurm,gres,slurmdbd}.conf;
# makes two fake GPUs (char devices 1,3); starts munged, mariadbd (--skip-networking),
# slurmdbd, slurmctld and slurmd directly (no systemd); creates the accounting DB, cluster,
# account and user associations; waits for the node to be idle; runs a smoke job.
# Every daemon listens on loopback only (check with scripts/slurm/check-loopback.sh).
#
# Environment knobs:
#   LOCAL_SLURM_ACCOUNTING=1   run slurmdbd + MariaDB so `sacct` works (the snakemake slurm
#                              plugin's default status command).  0: no accounting; then
#                              snakemake needs --slurm-status-command squeue.
#   LOCAL_SLURM_SMOKE=1        submit a 1-GPU smoke job at the end (0: skip).
#   LOCAL_SLURM_HOSTNAME_MODE=auto|plain|uts|hosts
#                              Slurm binds to the address the hostname resolves to.  auto:
#                              plain if that is loopback, else uts (start the slurm daemons
#                              in a UTS namespace whose hostname is `localhost`).  hosts:
#                              add "127.0.1.1 <hostname>" to /etc/hosts instead.
#   LOCAL_SLURM_DIR=/var/lib/local-slurm   state + logs (log/ holds one file per daemon).
#   LOCAL_SLURM_USERS="root"   users given an association in account `local`.
#   LOCAL_SLURM_TIMEOUT=60     seconds to wait for each daemon / the node / the smoke job.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

ACCOUNTING="${LOCAL_SLURM_ACCOUNTING:-1}"
SMOKE="${LOCAL_SLURM_SMOKE:-1}"
HOSTMODE="${LOCAL_SLURM_HOSTNAME_MODE:-auto}"
USERS="${LOCAL_SLURM_USERS:-root}"
TIMEOUT="${LOCAL_SLURM_TIMEOUT:-60}"
T0=$(date +%s.%N)

[[ $EUID -eq 0 ]] || ls_die "run as root (it installs packages and starts system daemons)"
[[ "$ACCOUNTING" == 0 || "$ACCOUNTING" == 1 ]] || ls_die "LOCAL_SLURM_ACCOUNTING must be 0 or 1"

elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
step() { ls_say "$(printf '%5ss' "$(elapsed)") $*"; }

# wait_for SECONDS DESCRIPTION COMMAND... : poll COMMAND every 0.2 s until it succeeds.
wait_for() {
  local secs="$1" what="$2"; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then
      ls_say "timed out after ${secs}s waiting for: $what"
      return 1
    fi
    sleep 0.2
  done
}

# show the end of a log file, then fail
fail_with_log() {
  local msg="$1" log="$2"
  if [[ -r "$log" ]]; then
    printf '%s\n' "---- last lines of $log ----" >&2
    tail -n 25 "$log" >&2 || true
  fi
  ls_die "$msg"
}

# ---------------------------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------------------------
PKGS=(slurmctld slurmd slurm-client munge iproute2)
[[ "$ACCOUNTING" == 1 ]] && PKGS+=(slurmdbd mariadb-server mariadb-client)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Never let a package's maintainer script start a daemon with its stock config (which
  # would listen on 0.0.0.0): a policy-rc.d that says "no" for the duration of the install.
  policy_added=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  apt_log="$(mktemp)"
  if ! { apt-get update -q -o DPkg::Lock::Timeout=300 &&
      apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"; } \
      >"$apt_log" 2>&1; then
    ((policy_added)) && rm -f /usr/sbin/policy-rc.d
    fail_with_log "apt-get install ${missing[*]} failed" "$apt_log"
  fi
  ((policy_added)) && rm -f /usr/sbin/policy-rc.d
  rm -f "$apt_log"
  step "packages installed"
fi
for b in slurmctld slurmd sbatch sinfo scontrol munged; do
  command -v "$b" >/dev/null || ls_die "$b not found after installing packages"
done

# ---------------------------------------------------------------------------------------------
# 2. Hostname: Slurm (CommunicationParameters=NoInAddrAny) binds to the hostname's address.
# ---------------------------------------------------------------------------------------------
host="$(hostname)"
resolves_to_loopback() {
  local addrs
  addrs="$(getent ahosts "$1" 2>/dev/null | awk '{print $1}' | sort -u)"
  [[ -n "$addrs" ]] || return 1
  ! grep -Evq '^(127\.|::1$)' <<<"$addrs"
}
USE_UTS=0
case "$HOSTMODE" in
  auto) resolves_to_loopback "$host" || USE_UTS=1 ;;
  plain) ;;
  uts) USE_UTS=1 ;;
  hosts)
    if ! resolves_to_loopback "$host"; then
      step "adding '127.0.1.1 $host' to /etc/hosts"
      printf '127.0.1.1 %s  # added by spikeloc scripts/slurm/start-local-slurm.sh\n' "$host" >>/etc/hosts
      resolves_to_loopback "$host" || ls_die "$host still does not resolve to loopback"
    fi ;;
  *) ls_die "LOCAL_SLURM_HOSTNAME_MODE must be auto, plain, uts or hosts" ;;
esac
if ((USE_UTS)); then
  command -v unshare >/dev/null || ls_die "unshare (util-linux) is needed for the UTS mode"
  step "hostname '$host' does not resolve to loopback only: slurm daemons run in a UTS namespace named 'localhost'"
fi

# start a slurm daemon, in a UTS namespace called localhost when needed
run_slurm_daemon() {
  if ((USE_UTS)); then
    unshare --uts -- sh -c 'hostname localhost && exec "$@"' sh "$@"
  else
    "$@"
  fi
}

# ---------------------------------------------------------------------------------------------
# 3. Directories, fake GPUs, configuration files
# ---------------------------------------------------------------------------------------------
getent passwd slurm >/dev/null || ls_die "user slurm missing (the slurm packages create it)"
mkdir -p "$LS_DIR" "$LS_LOG" "$LS_DIR/slurmctld" "$LS_DIR/slurmd" "$LS_RUN" "$LS_ETC" "$LS_GPU_DIR"
chmod 755 "$LS_DIR" "$LS_RUN" "$LS_LOG"
chown root:root "$LS_DIR" "$LS_LOG"
chown slurm:slurm "$LS_DIR/slurmctld" "$LS_RUN"
# log files of the daemons that run as slurm; munged insists on a log dir of its own
for f in slurmctld.log slurmdbd.log; do
  [[ -e "$LS_LOG/$f" ]] || : >"$LS_LOG/$f"
  chown slurm:slurm "$LS_LOG/$f"
done
install -d -o munge -g munge -m 700 "$LS_LOG/munge"
install -d -o munge -g munge -m 755 /run/munge
for ((i = 0; i < LS_NGPU; i++)); do
  dev="$LS_GPU_DIR/gpu$i"
  if [[ ! -c "$dev" ]]; then
    rm -f "$dev"
    mknod -m 666 "$dev" c 1 3
  fi
done

# node topology from `slurmd -C` (CPUs, Boards, Sockets, Cores, Threads), 85 % of RAM
hw="$(slurmd -C 2>/dev/null | head -n1)"
[[ -n "$hw" ]] || ls_die "slurmd -C printed nothing"
topo="$(tr ' ' '\n' <<<"$hw" | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')"
realmem="$(tr ' ' '\n' <<<"$hw" | sed -n 's/^RealMemory=//p')"
[[ -n "$topo" && -n "$realmem" ]] || ls_die "cannot parse slurmd -C output: $hw"
realmem=$((realmem * 85 / 100))

changed_files=()
# put_file DEST MODE OWNER : write stdin to DEST if its content differs; remember the change
put_file() {
  local dest="$1" mode="$2" owner="$3" tmp
  tmp="$(mktemp "$dest.XXXXXX")"
  cat >"$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  if [[ -f "$dest" ]] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
    chmod "$mode" "$dest"; chown "$owner" "$dest"
  else
    mv -f "$tmp" "$dest"
    changed_files+=("$(basename "$dest")")
  fi
}

if [[ "$ACCOUNTING" == 1 ]]; then
  # job_comment: sacct shows the snakemake plugin's --comment "rule_<name>..." per job
  acct_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment"
else
  acct_lines="AccountingStorageType=accounting_storage/none"
fi

put_file "$LS_ETC/slurm.conf" 644 root:root <<EOF
# Written by spikeloc scripts/slurm/start-local-slurm.sh -- a one-node test cluster on
# 127.0.0.1 only.  Edits are overwritten on the next start.
ClusterName=$LS_CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
# bind every listening socket to the hostname's address (loopback), never 0.0.0.0
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$LS_DIR/slurmctld
SlurmdSpoolDir=$LS_DIR/slurmd
SlurmctldPidFile=$LS_PID_slurmctld
SlurmdPidFile=$LS_PID_slurmd
SlurmctldLogFile=$LS_LOG/slurmctld.log
SlurmdLogFile=$LS_LOG/slurmd.log
# no cgroups in containers: linuxproc tracking; task/affinity so srun --cpu-bind works quietly
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without it a job that gives no --mem gets the whole node's memory
DefMemPerCPU=1000
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
GresTypes=gpu
JobAcctGatherType=jobacct_gather/linux
$acct_lines
NodeName=localhost NodeAddr=127.0.0.1 ${topo}RealMemory=$realmem Gres=gpu:fake:$LS_NGPU State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

put_file "$LS_ETC/gres.conf" 644 root:root <<EOF
# Written by spikeloc scripts/slurm/start-local-slurm.sh: $LS_NGPU fake GPUs (char devices 1,3).
NodeName=localhost Name=gpu Type=fake File=$LS_GPU_DIR/gpu[0-$((LS_NGPU - 1))]
EOF

if [[ "$ACCOUNTING" == 1 ]]; then
  if [[ ! -s "$LS_DIR/dbpass" ]]; then
    (umask 077; head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24 >"$LS_DIR/dbpass")
  fi
  chmod 600 "$LS_DIR/dbpass"
  DBPASS="$(cat "$LS_DIR/dbpass")"
  put_file "$LS_ETC/slurmdbd.conf" 600 slurm:slurm <<EOF
# Written by spikeloc scripts/slurm/start-local-slurm.sh (must be 0600, owner slurm).
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
# slurmdbd ignores slurm.conf here; without this it listens on 0.0.0.0:6819
CommunicationParameters=NoInAddrAny
LogFile=$LS_LOG/slurmdbd.log
PidFile=$LS_PID_slurmdbd
StorageType=accounting_storage/mysql
# MariaDB runs with --skip-networking: "localhost" means its unix socket
StorageHost=localhost
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
EOF
fi
((${#changed_files[@]})) && step "wrote ${changed_files[*]}"

conf_changed() { # conf_changed NAME... : true if any of the named files changed this run
  local f c
  for f in "$@"; do for c in "${changed_files[@]}"; do [[ "$f" == "$c" ]] && return 0; done; done
  return 1
}

# stop_daemon NAME : TERM by pidfile, wait, KILL if needed (used when a config changed)
stop_daemon() {
  local pid
  pid="$(ls_pid "$1")" || { rm -f "$(ls_pidfile "$1")"; return 0; }
  step "restarting $1 (configuration changed)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$(ls_pidfile "$1")"
}
if conf_changed slurm.conf gres.conf; then stop_daemon slurmd; stop_daemon slurmctld; fi
if conf_changed slurmdbd.conf; then stop_daemon slurmdbd; fi

# ---------------------------------------------------------------------------------------------
# 4. munged
# ---------------------------------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
  step "creating /etc/munge/munge.key"
  if command -v mungekey >/dev/null; then
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
  else
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
fi
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
if ! ls_pid munged >/dev/null; then
  step "starting munged"
  rm -f "$LS_PID_munged"
  munge_opts=(--log-file="$LS_LOG/munge/munged.log" --pid-file="$LS_PID_munged")
  # an unresolvable hostname makes munged warn about its "origin" address
  ((USE_UTS)) && munge_opts+=(--origin=127.0.0.1)
  runuser -u munge -- munged "${munge_opts[@]}" \
    || fail_with_log "munged did not start" "$LS_LOG/munge/munged.log"
  wait_for "$TIMEOUT" "munge round trip" sh -c 'munge -n | unmunge' \
    || fail_with_log "munge does not work" "$LS_LOG/munge/munged.log"
fi

# ---------------------------------------------------------------------------------------------
# 5. MariaDB + slurmdbd (accounting)
# ---------------------------------------------------------------------------------------------
if [[ "$ACCOUNTING" == 1 ]]; then
  install -d -o mysql -g mysql -m 755 /run/mysqld
  if ! ls_pid mariadbd >/dev/null; then
    if [[ ! -d /var/lib/mysql/mysql ]]; then
      step "initialising MariaDB data directory"
      install -d -o mysql -g mysql -m 750 /var/lib/mysql
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
        --auth-root-authentication-method=socket >"$LS_LOG/mariadb-install.log" 2>&1 \
        || fail_with_log "mariadb-install-db failed" "$LS_LOG/mariadb-install.log"
    fi
    step "starting mariadbd (--skip-networking)"
    rm -f "$LS_PID_mariadbd"
    setsid mariadbd --user=mysql --skip-networking --datadir=/var/lib/mysql \
      --socket=/run/mysqld/mysqld.sock --pid-file="$LS_PID_mariadbd" \
      </dev/null >>"$LS_LOG/mariadb.log" 2>&1 &   # no --log-error: stderr (as root) is the log
    disown || true
    wait_for "$TIMEOUT" "mariadbd" mariadb-admin --socket=/run/mysqld/mysqld.sock ping \
      || fail_with_log "mariadbd did not start" "$LS_LOG/mariadb.log"
    wait_for 10 "mariadbd pidfile" ls_pid mariadbd || true
  fi
  if ! ls_pid slurmdbd >/dev/null; then
    # (re)assert DB, user and password: cheap, and repairs a half-done earlier run
    mariadb --socket=/run/mysqld/mysqld.sock -u root <<SQL || ls_die "creating the slurm DB/user failed"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
    step "starting slurmdbd"
    rm -f "$LS_PID_slurmdbd"
    run_slurm_daemon slurmdbd </dev/null >>"$LS_LOG/slurmdbd.log" 2>&1 \
      || fail_with_log "slurmdbd did not start" "$LS_LOG/slurmdbd.log"
    wait_for "$TIMEOUT" "slurmdbd" sacctmgr -n show cluster \
      || fail_with_log "slurmdbd does not answer" "$LS_LOG/slurmdbd.log"
  fi
  # cluster first, so that the account/user associations can be made before slurmctld runs
  if ! sacctmgr -nP show cluster format=cluster 2>/dev/null | grep -qx "$LS_CLUSTER"; then
    step "sacctmgr: adding cluster $LS_CLUSTER"
    sacctmgr -i add cluster "$LS_CLUSTER" >/dev/null || ls_die "sacctmgr add cluster failed"
  fi
  if ! sacctmgr -nP show account format=account 2>/dev/null | grep -qx "$LS_ACCOUNT"; then
    step "sacctmgr: adding account $LS_ACCOUNT"
    sacctmgr -i add account "$LS_ACCOUNT" cluster="$LS_CLUSTER" \
      description="local test account" organization=spikeloc >/dev/null \
      || ls_die "sacctmgr add account failed"
  fi
  for u in $USERS; do
    if ! sacctmgr -nP show assoc where cluster="$LS_CLUSTER" account="$LS_ACCOUNT" user="$u" \
        format=user 2>/dev/null | grep -qx "$u"; then
      step "sacctmgr: adding user $u to account $LS_ACCOUNT"
      sacctmgr -i add user "$u" account="$LS_ACCOUNT" defaultaccount="$LS_ACCOUNT" \
        cluster="$LS_CLUSTER" >/dev/null || ls_die "sacctmgr add user $u failed"
    fi
  done
fi

# ---------------------------------------------------------------------------------------------
# 6. slurmctld + slurmd
# ---------------------------------------------------------------------------------------------
if ! ls_pid slurmctld >/dev/null; then
  step "starting slurmctld"
  rm -f "$LS_PID_slurmctld"
  run_slurm_daemon slurmctld </dev/null >>"$LS_LOG/slurmctld.log" 2>&1 \
    || fail_with_log "slurmctld did not start" "$LS_LOG/slurmctld.log"
  wait_for "$TIMEOUT" "slurmctld" scontrol ping \
    || fail_with_log "slurmctld does not answer" "$LS_LOG/slurmctld.log"
fi
if ! ls_pid slurmd >/dev/null; then
  step "starting slurmd -N localhost"
  rm -f "$LS_PID_slurmd"
  run_slurm_daemon slurmd -N localhost </dev/null >>"$LS_LOG/slurmd.log" 2>&1 \
    || fail_with_log "slurmd did not start" "$LS_LOG/slurmd.log"
fi

node_state() { sinfo -h -N -n localhost -o '%T' 2>/dev/null | head -n1; }
node_ready() { [[ "$(node_state)" =~ ^(idle|mixed|allocated|completing)$ ]]; }
if ! node_ready; then
  end=$((SECONDS + TIMEOUT)); resumed=0
  until node_ready; do
    st="$(node_state)"
    # a node left DOWN/DRAINED by an earlier run: resume it once
    if ((!resumed)) && [[ "$st" =~ ^(down|drain|drained|draining|fail) ]]; then
      scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
      resumed=1
    fi
    if ((SECONDS >= end)); then
      scontrol show node localhost >&2 || true
      fail_with_log "node localhost not idle after ${TIMEOUT}s (state: ${st:-?})" "$LS_LOG/slurmd.log"
    fi
    sleep 0.2
  done
fi
step "node localhost is $(node_state) ($(sinfo -h -N -n localhost -o '%c CPUs, %m MB, %G'))"

# ---------------------------------------------------------------------------------------------
# 7. smoke job: sbatch + srun step + one fake GPU
# ---------------------------------------------------------------------------------------------
if [[ "$SMOKE" == 1 ]]; then
  out="$LS_LOG/smoke.out"
  rm -f "$out"
  # shellcheck disable=SC2016
  jid="$(sbatch --parsable -J local-slurm-smoke -D /tmp -o "$out" -t 1 -c 1 --mem=50 --gpus=1 \
    --wrap 'srun -n1 sh -c "echo smoke-ok node=\$SLURMD_NODENAME gpus=\$CUDA_VISIBLE_DEVICES"')" \
    || ls_die "sbatch of the smoke job failed"
  jid="${jid%%;*}"
  end=$((SECONDS + TIMEOUT))
  while :; do
    st="$(scontrol show job -o "$jid" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p')"
    case "$st" in
      COMPLETED) break ;;
      FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
        cat "$out" >&2 2>/dev/null || true
        ls_die "smoke job $jid ended $st" ;;
    esac
    if ((SECONDS >= end)); then
      reason="$(squeue -h -j "$jid" -o %r 2>/dev/null || true)"
      scancel "$jid" 2>/dev/null || true
      # other users' jobs holding the node is not a fault of the cluster
      if [[ "$st" == PENDING && "$reason" =~ ^(Resources|Priority)$ ]] && \
          [[ "$(node_state)" =~ ^(mixed|allocated|completing) ]]; then
        step "WARNING: smoke job $jid still pending after ${TIMEOUT}s (node busy: $reason); cancelled it"
        break
      fi
      ls_die "smoke job $jid not done after ${TIMEOUT}s (state ${st:-?}, reason ${reason:-?})"
    fi
    sleep 0.2
  done
  if [[ "$st" == COMPLETED ]]; then
    grep -q 'smoke-ok' "$out" 2>/dev/null || ls_die "smoke job $jid completed but wrote no smoke-ok to $out"
    step "smoke job $jid: $(grep -m1 smoke-ok "$out")"
  fi
fi

mode="accounting (sacct works)"; [[ "$ACCOUNTING" == 1 ]] || mode="no accounting (use --slurm-status-command squeue)"
step "local SLURM cluster up: cluster $LS_CLUSTER, partition debug, $mode; logs in $LS_LOG"
