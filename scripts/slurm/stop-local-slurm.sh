#!/usr/bin/env bash
# Stop the local SLURM cluster started by start-local-slurm.sh: each daemon by the PID in
# its pidfile (slurmd, slurmctld, slurmdbd, mariadbd, munged, in that order), TERM first and
# KILL after LOCAL_SLURM_STOP_TIMEOUT seconds (default 15).  Stale pidfiles are removed (a
# stale slurmctld pidfile makes `apt-get purge slurmctld` hang in its prerm).  Idempotent:
# running it when nothing runs just cleans up.  State (jobs, accounting DB) is kept, so the
# next start is quick.  Packages stay installed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

STOP_TIMEOUT="${LOCAL_SLURM_STOP_TIMEOUT:-15}"
[[ $EUID -eq 0 ]] || ls_die "run as root"

stopped=0
for d in "${LS_DAEMONS[@]}"; do
  f="$(ls_pidfile "$d")"
  if pid="$(ls_pid "$d")"; then
    ls_say "stopping $d (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    end=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      ls_say "$d (pid $pid) ignored TERM for ${STOP_TIMEOUT}s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    stopped=$((stopped + 1))
  elif [[ -e "$f" ]]; then
    ls_say "removing stale pidfile $f"
  fi
  rm -f "$f"
done
# the Debian init scripts' default pidfiles, in case something else started the daemons once
for f in /run/slurmctld.pid /run/slurmd.pid /run/slurmdbd.pid; do
  if [[ -e "$f" ]]; then
    pid="$(tr -dc '0-9' <"$f")"
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
      ls_say "removing stale pidfile $f"
      rm -f "$f"
    fi
  fi
done
ls_say "stopped $stopped daemon(s); state kept in $LS_DIR"
