#!/usr/bin/env bash
# Stop the cluster that .ci/slurm-up.sh DIR started: cancel its jobs, stop each
# daemon by the PID in its PID file (slurmd, slurmctld, munged), waiting for
# each to exit, and remove the /etc/slurm/slurm.conf link to DIR. Safe to run
# twice or on a half-started cluster.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(realpath -m "$1")
export SLURM_CONF="$dir/slurm.conf" PATH="$PATH:/usr/sbin"

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Jobs run under slurmstepd, which outlives slurmd: cancel them while the
# controller still answers, and give them KillWait to go.
if alive "$dir/run/slurmctld.pid"; then
  scancel --full --user="$(id -un)" 2>/dev/null
  for _ in $(seq 1 75); do
    [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
    sleep 0.2
  done
fi

for name in slurmd slurmctld munged; do
  pf="$dir/run/$name.pid"
  alive "$pf" || continue
  pid=$(cat "$pf")
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$0: $name ($pid) ignored SIGTERM; killing it" >&2
    kill -9 "$pid"
  fi
done
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$SLURM_CONF" ]; then
  rm -f /etc/slurm/slurm.conf
fi
exit 0
