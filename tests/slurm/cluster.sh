# Throwaway Slurm cluster for tests, sourced by tests/test_slurm.sh (bash, needs root).
#
#   cluster_start DIR [netns]   munged (as user munge, own key), slurmctld and two slurmd nodes n1, n2,
#                               every file (slurm.conf, state, spool, logs, TmpFS=DIR/tmp/%n) under DIR.
#                               Without "netns" all daemons share this host (distinct ports on 127.0.0.1);
#                               with it n1 and n2 live in their own network namespaces with addresses
#                               10.213.0.11/.12 on a bridge mtbr0 (10.213.0.1) that cluster_start creates.
#   cluster_stop                stops every job, then every daemon by its own PID; removes the namespaces
#                               and the bridge it made. Safe to call twice and after a failed start.
# Exports SLURM_CONF and MT_CLUSTER_* so that sbatch, squeue and scontrol talk to this cluster only.
#
# Requeued jobs: Slurm holds a requeued job for cred_expire + 1 seconds before it may start again (the
# default cred_expire is 120 s). That pause is what keeps the new instance clear of the old one: both have
# the same job id and number their steps from 0, and an old step's slurmstepd can outlive the requeue by
# seconds; the PMIx plugin names its per-step server socket (SlurmdSpoolDir/stepd.slurm.pmix.JOB.STEP) and
# client directory (TmpFS/spmix_appdir_UID_JOB.STEP) by job and step id only, so a new step 0 started
# while the old one is still tearing down fails to launch ("Cannot bind() UNIX socket ...: Address already
# in use", srun "task N launch failed") and slurmd may refuse the new batch script ("Job N already killed,
# do not launch batch job"). Tests must therefore never start a requeued job early (scontrol update
# StartTime=now); this cluster shortens the pause instead: MT_CLUSTER_CRED_EXPIRE (default 20 s).
# shellcheck shell=bash

MT_CLUSTER_DIR=''
MT_CLUSTER_PIDS=()
MT_CLUSTER_NETNS=()
MT_CLUSTER_BRIDGE=''
MT_CLUSTER_PORT_BASE=${MT_CLUSTER_PORT_BASE:-16810}
MT_CLUSTER_CRED_EXPIRE=${MT_CLUSTER_CRED_EXPIRE:-20}

# Waits up to $1 seconds for the command after it to succeed.
cluster_wait_for() {
    local t=$1 start=$SECONDS
    shift
    until "$@" >/dev/null 2>&1; do
        [ $((SECONDS - start)) -ge "$t" ] && return 1
        sleep 0.3
    done
}

# Reads a PID file written by a daemon that forks (waits for it first).
cluster_pid_of() {
    cluster_wait_for 15 test -s "$1" || return 1
    local pid
    pid=$(cat "$1")
    MT_CLUSTER_PIDS+=("$pid")
}

cluster_netns_setup() {
    local d=$1 i
    mkdir -p /run/netns
    MT_CLUSTER_BRIDGE=mtbr0
    ip link add "$MT_CLUSTER_BRIDGE" type bridge || return 1
    ip addr add 10.213.0.1/24 dev "$MT_CLUSTER_BRIDGE" || return 1
    ip link set "$MT_CLUSTER_BRIDGE" up || return 1
    for i in 1 2; do
        ip netns add "mtn$i" || return 1
        MT_CLUSTER_NETNS+=("mtn$i")
        ip link add "mtv$i" type veth peer name eth0 netns "mtn$i" || return 1
        ip link set "mtv$i" master "$MT_CLUSTER_BRIDGE" up || return 1
        nsenter --net="/run/netns/mtn$i" ip addr add "10.213.0.1$i/24" dev eth0 || return 1
        nsenter --net="/run/netns/mtn$i" ip link set eth0 up || return 1
        nsenter --net="/run/netns/mtn$i" ip link set lo up || return 1
    done
    : "$d" # reachability is checked by the nodes registering with slurmctld over the bridge
}

cluster_start() {
    local d=$1 mode=${2:-local} host ctl_addr n1_addr n2_addr
    MT_CLUSTER_DIR=$d
    mkdir -p "$d"/{munge/private,state,log,spool/n1,spool/n2,tmp/n1,tmp/n2,run}
    chmod 755 "$d"
    # munge: its own key (in a directory only the munge user reads) and socket, run as the munge user.
    dd if=/dev/urandom of="$d/munge/private/munge.key" bs=1024 count=1 status=none
    chown -R munge:munge "$d/munge"
    chmod 755 "$d/munge"
    chmod 700 "$d/munge/private"
    chmod 400 "$d/munge/private/munge.key"
    runuser -u munge -- /usr/sbin/munged --key-file="$d/munge/private/munge.key" \
        --socket="$d/munge/munge.sock" --pid-file="$d/munge/private/munged.pid" \
        --log-file="$d/munge/private/munged.log" --seed-file="$d/munge/private/munged.seed" || return 1
    cluster_pid_of "$d/munge/private/munged.pid" || return 1
    host=$(hostname -s)
    ctl_addr=127.0.0.1 n1_addr=127.0.0.1 n2_addr=127.0.0.1
    if [ "$mode" = netns ]; then
        cluster_netns_setup "$d" || return 1
        ctl_addr=10.213.0.1 n1_addr=10.213.0.11 n2_addr=10.213.0.12
    fi
    local p=$MT_CLUSTER_PORT_BASE
    cat >"$d/slurm.conf" <<EOF
ClusterName=mttest
SlurmctldHost=$host($ctl_addr)
SlurmctldPort=$p
SlurmdPort=$((p + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.sock,cred_expire=$MT_CLUSTER_CRED_EXPIRE
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool/%n
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmdPidFile=$d/run/slurmd-%n.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
TmpFS=$d/tmp/%n
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
KillWait=30
OverTimeLimit=0
MinJobAge=600
InactiveLimit=0
Waittime=0
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
NodeName=n1 NodeHostname=$host NodeAddr=$n1_addr Port=$((p + 2)) CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=$n2_addr Port=$((p + 3)) CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=4 ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    export SLURM_CONF=$d/slurm.conf
    /usr/sbin/slurmctld -f "$SLURM_CONF" -i || return 1
    cluster_pid_of "$d/run/slurmctld.pid" || return 1
    local n i=0
    for n in n1 n2; do
        i=$((i + 1))
        if [ "$mode" = netns ]; then
            nsenter --net="/run/netns/mtn$i" /usr/sbin/slurmd -f "$SLURM_CONF" -N "$n" || return 1
        else
            /usr/sbin/slurmd -f "$SLURM_CONF" -N "$n" || return 1
        fi
        cluster_pid_of "$d/run/slurmd-$n.pid" || return 1
    done
    cluster_wait_for 60 cluster_nodes_idle || return 1
}

cluster_nodes_idle() {
    [ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -c '^idle')" -eq 2 ]
}

cluster_stop() {
    [ -n "$MT_CLUSTER_DIR" ] || return 0
    if [ -n "${SLURM_CONF:-}" ] && [ "${#MT_CLUSTER_PIDS[@]}" -gt 1 ]; then
        timeout 10 scancel --full --signal=KILL --user=root >/dev/null 2>&1
        timeout 10 scancel --user=root >/dev/null 2>&1
        cluster_wait_for 10 test -z "$(timeout 5 squeue -h -o %i 2>/dev/null)"
    fi
    local pid i
    # Daemons in reverse start order (nodes, controller, munge), TERM then KILL, by PID only.
    for ((i = ${#MT_CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${MT_CLUSTER_PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        cluster_wait_for 10 sh -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null
    done
    MT_CLUSTER_PIDS=()
    for i in "${MT_CLUSTER_NETNS[@]}"; do ip netns delete "$i" 2>/dev/null; done
    MT_CLUSTER_NETNS=()
    if [ -n "$MT_CLUSTER_BRIDGE" ]; then ip link delete "$MT_CLUSTER_BRIDGE" 2>/dev/null; fi
    MT_CLUSTER_BRIDGE=''
    MT_CLUSTER_DIR=''
}
