# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source it
# Shared settings of the local single-node SLURM cluster; sourced by
# start-local-slurm.sh, stop-local-slurm.sh and check-loopback.sh so that all three
# agree on where state, logs and pidfiles live.  Not meant to be run by itself.

# Persistent state (controller state, slurmd spool, logs, DB password).
LS_DIR="${LOCAL_SLURM_DIR:-/var/lib/local-slurm}"
LS_LOG="$LS_DIR/log"
# Pidfiles of the slurm daemons (tmpfs on a real machine: gone after a reboot, so never stale then).
LS_RUN="/run/local-slurm"
# Fake GPU device nodes (character devices 1,3 = /dev/null look-alikes) for gres.conf.
LS_GPU_DIR="/run/local-slurm-fake-gpu"
LS_NGPU=2
# Slurm configuration directory of the Debian packages.
LS_ETC="/etc/slurm"
LS_CLUSTER="${LOCAL_SLURM_CLUSTER:-localcluster}"
LS_ACCOUNT="${LOCAL_SLURM_ACCOUNT:-local}"

# pidfile of each daemon, in stop order
LS_PID_slurmd="$LS_RUN/slurmd.pid"
LS_PID_slurmctld="$LS_RUN/slurmctld.pid"
LS_PID_slurmdbd="$LS_RUN/slurmdbd.pid"
LS_PID_mariadbd="/run/mysqld/mysqld.pid"
LS_PID_munged="/run/munge/munged.pid"
LS_DAEMONS=(slurmd slurmctld slurmdbd mariadbd munged)

ls_say() { printf '[local-slurm] %s\n' "$*"; }
ls_die() { printf '[local-slurm] ERROR: %s\n' "$*" >&2; exit 1; }

# ls_pidfile NAME -> path of the daemon's pidfile
ls_pidfile() { local v="LS_PID_$1"; printf '%s\n' "${!v}"; }

# ls_pid NAME -> prints the PID and returns 0 if the daemon named NAME runs with the
# PID in its pidfile (the process's comm must be NAME, so a recycled PID does not count).
ls_pid() {
  local f pid comm
  f="$(ls_pidfile "$1")"
  [[ -r "$f" ]] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
  [[ "$comm" == "$1" ]] || return 1
  printf '%s\n' "$pid"
}
