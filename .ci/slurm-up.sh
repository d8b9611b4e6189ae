#!/usr/bin/env bash
# Start a throwaway single-node Slurm cluster (munged, slurmctld, slurmd) for
# the cluster test, with every file (config, keys, sockets, spool, logs, PID
# files) under DIR, and one link: /etc/slurm/slurm.conf -> DIR/slurm.conf.
# That link is needed because the Snakemake job step drops SLURM_CONF (all
# SLURM_* but the job's id) before it calls `srun` inside a job, and srun then
# only finds the default path. It is made only where no Slurm config exists
# (never over a real cluster's). Needs root and Debian's `slurmctld slurmd
# slurm-client munge` (install.sh --test installs them). Stop it with
# .ci/slurm-down.sh DIR, which removes the link and the daemons.
#
#   .ci/slurm-up.sh DIR      (then SLURM_CONF=DIR/slurm.conf, or the link, finds it)
#
# The node is a fake GPU node: GPUs as generic resources backed by harmless
# character devices (/dev/null, /dev/zero, ...; Slurm numbers
# CUDA_VISIBLE_DEVICES by device, so they must be devices, not plain files),
# and CPUs/memory taken from slurm.conf instead of the hardware
# (SlurmdParameters=config_overrides), so the Slurm profile's real requests
# (1 GPU, 8 CPUs, 32 GB for fine-tuning, all at once) schedule on a 2-core
# CI box. Nothing
# enforces those limits (task/none), so jobs just share the real cores.
# No slurmdbd: `sacct` does not work here, as on many small clusters, which is
# what the profile's squeue status polling is for.
#
# Environment: SLURM_CTLD_PORT, SLURMD_PORT (default 6817, 6818; pick free ones
# to run beside another cluster), SLURM_NODE_CPUS (32), SLURM_NODE_MEM_MB (262144),
# SLURM_NODE_GPUS (4, at most 4).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: must run as root (slurmd starts jobs as their user)" >&2; exit 1; }
for bin in munged mungekey slurmctld slurmd sinfo; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || {
    echo "$0: $bin not found; install Debian's slurmctld slurmd slurm-client munge" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"

dir=$(realpath -m "$1")
[ -e "$dir/slurm.conf" ] && { echo "$0: $dir already holds a cluster; run slurm-down.sh first" >&2; exit 1; }
default_conf=/etc/slurm/slurm.conf
if [ -e "$default_conf" ]; then   # -e follows the link: a dangling one from a removed DIR is replaced
  echo "$0: $default_conf exists (a real Slurm, or another test cluster: $(readlink -f "$default_conf"));" \
       "not starting a second one" >&2
  exit 1
fi
ctld_port=${SLURM_CTLD_PORT:-6817}
slurmd_port=${SLURMD_PORT:-6818}
cpus=${SLURM_NODE_CPUS:-32}
mem=${SLURM_NODE_MEM_MB:-262144}
gpus=${SLURM_NODE_GPUS:-4}

# munged checks permissions: its socket's directories must be searchable by
# all, and no directory on the way may be writable by others.
mkdir -p "$dir"/{munge,spool/ctld,spool/d,log,run}
chmod 0755 "$dir" "$dir/munge"
mungekey --create --keyfile="$dir/munge/munge.key"
chmod 0400 "$dir/munge/munge.key"
socket="$dir/munge/munge.socket"

cat > "$dir/slurm.conf" <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
DefMemPerCPU=1000
ReturnToService=2
# Keep finished jobs visible to squeue long enough for the profile's polling
# (the plugin wants >= 3x its first-check delay).
MinJobAge=600
KillWait=10
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:$gpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
# One device file per GPU.
devices=(/dev/null /dev/zero /dev/full /dev/urandom)
[ "$gpus" -ge 1 ] && [ "$gpus" -le ${#devices[@]} ] || { echo "$0: SLURM_NODE_GPUS must be 1..${#devices[@]}" >&2; exit 2; }
for dev in "${devices[@]:0:$gpus}"; do
  echo "NodeName=localhost Name=gpu File=$dev"
done > "$dir/gres.conf"
export SLURM_CONF="$dir/slurm.conf"
mkdir -p "$(dirname "$default_conf")"
ln -sfn "$SLURM_CONF" "$default_conf"

munged --socket="$socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/run/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost   # -N: the node name is not the hostname

for _ in $(seq 1 150); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)$' && break
  for name in munged slurmctld slurmd; do   # a daemon that died will not come back
    kill -0 "$(cat "$dir/run/$name.pid" 2>/dev/null)" 2>/dev/null || { sleep 0.5; break 2; }
  done
  sleep 0.2
done
if ! sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)$'; then
  echo "$0: the node did not come up:" >&2
  scontrol show node localhost >&2 || true
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  exit 1
fi
sinfo -o '%P %a %D %T %N %G'
