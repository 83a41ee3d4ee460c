#!/usr/bin/env bash
# List the listening TCP/UDP sockets of the local SLURM cluster's processes (slurmctld,
# slurmd, slurmdbd, slurmstepd, slurmscriptd, srun, munged, mariadbd) and fail if any of them
# listens on an address other than loopback (127.0.0.0/8, ::1).
#
#   bash scripts/slurm/check-loopback.sh          # exit 0: all loopback; 1: a non-loopback
#                                                 # listener; 2: no such process listens at all
#   bash scripts/slurm/check-loopback.sh --all    # judge every listening socket on the machine
#
# Uses `ss -ltunp` (iproute2; run as root so that ss can see other users' processes).
set -euo pipefail

ALL=0
[[ "${1:-}" == "--all" ]] && ALL=1
NAMES='^(slurmctld|slurmd|slurmdbd|slurmstepd|slurmscriptd|srun|munged|mariadbd|mysqld)$'

command -v ss >/dev/null || { echo "check-loopback: ss not found (apt-get install iproute2)" >&2; exit 3; }

is_loopback() {
  local a="$1"
  a="${a#[}"; a="${a%]}"; a="${a%%%*}"          # [::1] -> ::1 ; 127.0.0.53%lo -> 127.0.0.53
  case "$a" in
    127.*|::1|::ffff:127.*) return 0 ;;
    *) return 1 ;;
  esac
}

found=0 bad=0
# columns of `ss -H -ltunp`: Netid State Recv-Q Send-Q Local:Port Peer:Port Process
while read -r netid _state _rq _sq local _peer procs; do
  [[ -n "${netid:-}" ]] || continue
  addr="${local%:*}"
  port="${local##*:}"
  # every process name holding the socket: users:(("slurmd",pid=1,fd=5),("x",pid=2,fd=3))
  names="$( (grep -o '("[^"]*"' <<<"${procs:-}" || true) | tr -d '("' | sort -u | tr '\n' ' ')"
  ours=0
  for n in $names; do [[ "$n" =~ $NAMES ]] && ours=1; done
  ((ours || ALL)) || continue
  ((ours)) && found=$((found + 1))
  if is_loopback "$addr"; then verdict=ok; else verdict=NON-LOOPBACK; bad=$((bad + 1)); fi
  printf '%-4s %-28s %-6s %-13s %s\n' "$netid" "$addr" "$port" "$verdict" "${names:-?}"
done < <(ss -H -ltunp)

if ((bad)); then
  echo "check-loopback: FAIL: $bad listening socket(s) on a non-loopback address" >&2
  exit 1
fi
if ((found == 0)); then
  echo "check-loopback: no listening socket of slurm/munge/mariadb processes (is the cluster up?)" >&2
  exit 2
fi
echo "check-loopback: OK: $found listening socket(s) of the cluster, all on loopback"
