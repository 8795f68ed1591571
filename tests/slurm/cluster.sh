#!/usr/bin/env bash
# A single-node SLURM cluster on 127.0.0.1 for the integration test, from Debian's packages
# (munge, slurmctld, slurmd, slurm-client). No systemd, no cgroups, no accounting; all state,
# logs, sockets and pid files under one folder.
#
#   tests/slurm/cluster.sh start DIR   start munged, slurmctld and slurmd; wait for the node
#   tests/slurm/cluster.sh stop DIR    stop every daemon started in DIR, by the PID it recorded
#
# After `start`, DIR/bin holds wrappers of the SLURM client commands that point them at
# DIR/slurm.conf. Put DIR/bin first on PATH: the executor plugin's job step drops every
# SLURM_* variable (SLURM_CONF included) before it calls `srun`, so an exported SLURM_CONF
# does not reach it, while PATH does (sbatch --export=ALL), and nothing is written to /etc.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start "$@" in the background, detached from our stdio, and record its PID as DIR/NAME.pid.
launch() {
    local name=$1; shift
    setsid "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
    echo $! >"$dir/$name.pid"
}

stop() {
    local name pid
    for name in slurmd slurmctld munged; do   # reverse start order
        [[ -f $dir/$name.pid ]] || continue
        pid=$(cat "$dir/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/$name.pid"
    done
    # Job steps the daemons started (slurmstepd) are children of slurmd's session, but may
    # outlive it: stop those that still run a step of this cluster, by PID.
    local step
    for step in $(pgrep -x slurmstepd 2>/dev/null || true); do
        if tr '\0' ' ' <"/proc/$step/environ" 2>/dev/null | grep -q "SLURM_CONF=$dir/slurm.conf"; then
            kill -KILL "$step" 2>/dev/null || true
        fi
    done
}

start() {
    local missing=()
    for cmd in munged mungekey slurmctld slurmd sbatch srun squeue scontrol python3; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "missing: ${missing[*]} (apt-get install munge slurmctld slurmd slurm-client)" >&2
        exit 3
    fi
    mkdir -p "$dir"/{munge,ctld,spool,log,bin}
    chmod 0700 "$dir/munge"

    # munge: its own key, socket, pid and seed files.
    mungekey --create --force --keyfile="$dir/munge/munge.key"
    chmod 0400 "$dir/munge/munge.key"
    launch munged munged --foreground --force \
        --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
        --log-file="$dir/log/munged.log"
    for _ in $(seq 50); do [[ -S $dir/munge/munge.socket ]] && break; sleep 0.1; done
    [[ -S $dir/munge/munge.socket ]] || { echo "munged did not start:" >&2; cat "$dir/log/"munged.* >&2; exit 1; }

    # One node, localhost, with this machine's CPUs and memory as slurmd sees them.
    local cpus mem
    read -r cpus mem < <(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*RealMemory=\([0-9]*\).*/\1 \2/p')
    cat >"$dir/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh: a throwaway single-node cluster.
ClusterName=speedlimit
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/ctld/slurmctld.pid
SlurmdPidFile=$dir/spool/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
SlurmdTimeout=60
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    for cmd in sbatch srun squeue scancel scontrol sinfo sacct; do
        printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$dir/slurm.conf" "$(command -v "$cmd")" >"$dir/bin/$cmd"
        chmod +x "$dir/bin/$cmd"
    done
    export SLURM_CONF=$dir/slurm.conf
    launch slurmctld slurmctld -D -i -f "$dir/slurm.conf"
    launch slurmd slurmd -D -N localhost -f "$dir/slurm.conf"

    # Wait until the node takes jobs.
    local state=""
    for _ in $(seq 150); do
        state=$(sinfo -h -N -o %t 2>/dev/null || true)
        [[ $state == idle* ]] && break
        sleep 0.2
    done
    if [[ $state != idle* ]]; then
        echo "the node did not come up (state: '${state:-none}'); logs:" >&2
        tail -n 20 "$dir"/log/* >&2 || true
        stop
        exit 1
    fi
    echo "cluster up: $dir/slurm.conf ($cpus CPUs, $mem MB); PATH=$dir/bin:\$PATH"
}

case $action in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
