#!/usr/bin/env bash
# slurm/pretrain.sbatch on a real, throwaway Slurm cluster (tests/slurm/cluster.sh: munged, slurmctld and
# two slurmd nodes on this host, everything under a temporary folder, stopped by PID at the end):
#   a. 2 nodes x 1 task trains to the end; losses equal one plain process's to 1e-5 relative; a stale lock
#      (of a finished job) in its run directory does not block it;
#   b. a job whose time limit runs out gets the warning signal, checkpoints, requeues itself, resumes and
#      finishes with parameters bit-identical to (a)'s uninterrupted run;
#   c. `scontrol requeue` of a running job: the same;
#   d. a second job on (b)'s run directory is refused while (b) runs;
#   e. the warning signal while a job is starting is kept by the script, forwarded once the ranks are up,
#      and ends in a checkpoint and exit 3;
#   every job step launched (requeued jobs restart only after Slurm's own pause, see cluster.sh);
#   and, where network namespaces work, (a) again with the two nodes in their own namespaces over TCP.
# All jobs run at once (4 CPUs per node defined, 2 real cores, --overcommit). DESIGN 12 has the timings.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$PWD
if [ "$(id -u)" != 0 ]; then
    echo "# skipped: the Slurm test starts munged and Slurm daemons, which needs root"
    exit 0
fi
for b in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch; do
    [ -x "$b" ] || { echo "FAIL slurm: $b missing (make deps installs slurm-wlm and munge)"; exit 0; }
done
# shellcheck source=tests/slurm/cluster.sh
. tests/slurm/cluster.sh
tmp=$(mktemp -d /tmp/mt-slurm.XXXXXX)
chmod 755 "$tmp"
cleanup() {
    cluster_stop
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "FAIL slurm: interrupted"; exit 1' INT TERM
MT_CLUSTER_PORT_BASE=$((20000 + ($$ % 2000) * 4))
t0=$SECONDS
elapsed() { echo "#   ${1}: $((SECONDS - t0)) s since start"; }

# The job environment (sbatch exports this shell's environment): Open MPI as root, oversubscribed cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
unset MESHTRAIN_HOME MESHTRAIN_TRAIN MESHTRAIN_REQUEUE SLURM_JOB_ID

# Data and configs. STEPS is sized so that (b) is still training when its warning signal comes 30-60 s
# after it starts, also on a quiet machine (0.04 s per step; about 0.15 s with all jobs sharing two busy
# cores). 1000 steps once finished before the signal there.
STEPS=${MT_SLURM_STEPS:-2500}
mkdir -p "$tmp/work"
bin/prepare synthetic --out "$tmp/train.h5" --tokens 50000 --vocab 240 >/dev/null 2>&1 ||
    { echo "FAIL slurm: bin/prepare synthetic failed"; exit 0; }
parallel=${MT_SLURM_PARALLEL:-'{}'} # e.g. '{"zero": 0}' while debugging
cat >"$tmp/run.json" <<JSON
{"model": "$root/configs/models/tiny-neo.json", "threads": 1, "parallel": $parallel,
 "data": {"train": "$tmp/train.h5", "seq_len": 64},
 "train": {"micro_batch": 4, "global_batch": 16, "steps": $STEPS, "lr": 3e-3, "warmup_steps": 10,
           "log_every": 100}}
JSON

if ! cluster_start "$tmp/cluster"; then
    echo "FAIL slurm: cluster did not start: $(tail -n 3 "$tmp"/cluster/log/*.log 2>/dev/null | tr '\n' ' ')"
    exit 0
fi
echo "ok slurm: local cluster up (munged, slurmctld, slurmd n1 n2) in $((SECONDS - t0)) s"
if srun --mpi=list 2>&1 | grep -q pmix; then echo "ok slurm: srun --mpi=list has pmix"; else
    echo "FAIL slurm: srun --mpi=list has no pmix: $(srun --mpi=list 2>&1 | tr '\n' ' ')"; fi

# Job state helpers. Every wait has a deadline. A requeued job is never started early (no scontrol update
# StartTime=now): its new instance would race the old instance's step daemons, which share its job and
# step ids (tests/slurm/cluster.sh); the cluster's short cred_expire lets it start again after about 20 s.
job_field() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
# wait_state ID "STATE|STATE" SECONDS
wait_state() {
    local id=$1 want=$2 limit=$3 start=$SECONDS s
    while [ $((SECONDS - start)) -lt "$limit" ]; do
        s=$(job_field "$id" JobState)
        case "|$want|" in *"|$s|"*) return 0 ;; esac
        sleep 1
    done
    return 1
}
FINAL="COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED"
SB=(sbatch --parsable -N 2 --ntasks-per-node=1 --gpus-per-node=0 --cpus-per-task=1 --overcommit)
cd "$tmp/work" || exit 1

# A finished job whose id goes into (a)'s run directory as a stale lock.
dead=$("${SB[@]}" -N 1 -t 1 -J mt-dead --wrap true 2>"$tmp/sbatch.err")
if [ -z "$dead" ] || ! wait_state "$dead" "$FINAL" 30; then
    echo "FAIL slurm: a trivial job did not run: $(cat "$tmp/sbatch.err")"
    exit 0
fi
mkdir -p runs/mt-a
printf '%s\n' "$dead" >runs/mt-a/slurm.lock

# Submit b (time limit), a, c at once; the single-process reference runs beside them.
jb=$("${SB[@]}" -t 2 --signal=B:USR1@60 -J mt-b "$root/slurm/pretrain.sbatch" "$tmp/run.json")
ja=$("${SB[@]}" -t 10 -J mt-a "$root/slurm/pretrain.sbatch" "$tmp/run.json")
jc=$("${SB[@]}" -t 10 -J mt-c "$root/slurm/pretrain.sbatch" "$tmp/run.json")
echo "#   jobs: a $ja, b $jb, c $jc"
timeout 900 "$root/bin/train" "$tmp/run.json" --set run_dir="$tmp/single" >"$tmp/single.out" 2>&1 &
single=$!

# d: while b runs and holds its lock, a second job on the same run directory (same job name) is refused.
if wait_state "$jb" RUNNING 60 &&
    cluster_wait_for 30 grep -q "run directory" "slurm-mt-b-$jb.out" && [ -f runs/mt-b/slurm.lock ]; then
    jd=$("${SB[@]}" -t 2 -J mt-b "$root/slurm/pretrain.sbatch" "$tmp/run.json")
    if wait_state "$jd" "$FINAL" 60 && [ "$(job_field "$jd" ExitCode)" = 2:0 ] &&
        grep -q "refusing to start: .*held by job $jb" "slurm-mt-b-$jd.out"; then
        echo "ok slurm d: a second job on a live job's run directory is refused (exit 2)"
    else
        echo "FAIL slurm d: second job $jd on b's run directory: state $(job_field "$jd" JobState)" \
            "exit $(job_field "$jd" ExitCode): $(tail -n 2 "slurm-mt-b-$jd.out" 2>/dev/null | tr '\n' ' ')"
    fi
else
    echo "FAIL slurm d: job b did not start: $(job_field "$jb" JobState) $(job_field "$jb" Reason)"
fi

# c: requeue while it is training, once it has done a tenth of its steps.
crq=0
steps_done() { if [ -f "$1/metrics.jsonl" ]; then wc -l <"$1/metrics.jsonl"; else echo 0; fi; }
at_step() { [ "$(steps_done "$1")" -ge "$2" ]; }
if wait_state "$jc" RUNNING 60 && cluster_wait_for 120 at_step runs/mt-c $((STEPS / 10)); then
    scontrol requeue "$jc" && crq=1
    elapsed "job c requeued at step $(steps_done runs/mt-c)"
else
    echo "FAIL slurm c: job c never reached step $((STEPS / 10)): $(job_field "$jc" JobState)"
fi

# e: the warning signal while the job is starting (sent as soon as the script logs its start, before srun
# and the ranks are up): the script keeps it and forwards it once rank 0 has logged its start (every rank
# is past MPI_Init then); bin/train stops with a checkpoint and exit 3 (MESHTRAIN_REQUEUE=0: no requeue).
je=$(MESHTRAIN_REQUEUE=0 "${SB[@]}" -t 5 -J mt-e "$root/slurm/pretrain.sbatch" "$tmp/run.json")
esent=0
if cluster_wait_for 60 grep -q "start: job $je" "slurm-mt-e-$je.out"; then scancel -b -s USR1 "$je" && esent=1; fi

for j in "$ja" "$jb" "$jc" "$je"; do wait_state "$j" "$FINAL" 900; done
wait "$single" || echo "FAIL slurm: single-process reference run failed: $(tail -n 2 "$tmp/single.out")"
elapsed "jobs a b c done"
for j in "a $ja" "b $jb" "c $jc" "e $je"; do
    # shellcheck disable=SC2086 # "name id"
    set -- $j
    echo "#   job $1 ($2): $(job_field "$2" JobState) exit $(job_field "$2" ExitCode) restarts $(job_field "$2" Restarts)"
done

py() { /usr/bin/python3 "$root/tests/slurm/compare.py" "$@"; }
# a
if [ "$(job_field "$ja" JobState)" = COMPLETED ]; then
    echo "ok slurm a: 2 nodes x 1 task trained to the end (job $ja)"
else
    echo "FAIL slurm a: job $ja $(job_field "$ja" JobState): $(tail -n 3 "slurm-mt-a-$ja.out" | tr '\n' ' ')"
fi
# Two layouts sum in different orders, and over thousands of steps training amplifies that rounding into
# percents (6.7e-5 by step 1000 of 2500, 11% by the end): their first 200 steps are compared to 1e-5 (b and
# c against a, the same layout, bit for bit to the end).
py losses "slurm a: losses of 2 nodes x 1 task equal one process's to 1e-5 (first 200 steps)" "$tmp/single" \
    runs/mt-a $((STEPS < 200 ? STEPS : 200)) 1e-5
if grep -q "removing stale lock runs/mt-a/slurm.lock of job $dead" "slurm-mt-a-$ja.out"; then
    echo "ok slurm d: a stale lock (finished job $dead) does not block"
else
    echo "FAIL slurm d: a stale lock (finished job $dead) does not block: $(grep lock "slurm-mt-a-$ja.out")"
fi
# b
log=slurm-mt-b-$jb.out
if grep -q "got SIGUSR1: forwarding" "$log" && grep -q "requeueing job $jb" "$log" &&
    [ "$(job_field "$jb" Restarts)" -ge 1 ] 2>/dev/null && grep -q "restart 1 " "$log" &&
    grep -q "resuming from runs/mt-b/ckpt/latest" "$log"; then
    echo "ok slurm b: time limit -> USR1 forwarded -> checkpoint -> self-requeue -> resumed" \
        "($(grep -c 'requeueing job' "$log") requeues)"
else
    echo "FAIL slurm b: time limit did not go USR1 -> checkpoint -> requeue -> resume: restarts" \
        "$(job_field "$jb" Restarts); log: $(grep '^\[meshtrain\|stopped\|resumed\|error' "$log" | tail -n 8 | tr '\n' ' ')"
fi
if [ "$(job_field "$jb" JobState)" = COMPLETED ]; then echo "ok slurm b: requeued job finished (job $jb)"
else echo "FAIL slurm b: job $jb $(job_field "$jb" JobState): $(tail -n 3 "$log" | tr '\n' ' ')"; fi
py params "slurm b: final parameters bit-identical to the uninterrupted run" runs/mt-a runs/mt-b
py losses "slurm b: losses bit-identical to the uninterrupted run" runs/mt-a runs/mt-b "$STEPS" 0
# c
log=slurm-mt-c-$jc.out
if [ "$crq" = 1 ] && [ "$(job_field "$jc" Restarts)" -ge 1 ] 2>/dev/null &&
    [ "$(job_field "$jc" JobState)" = COMPLETED ] && grep -q "restart 1 " "$log"; then
    echo "ok slurm c: scontrol requeue of a running job: resumed and finished" \
        "($(grep -c 'resuming from' "$log") resumes)"
else
    echo "FAIL slurm c: scontrol requeue: state $(job_field "$jc" JobState) restarts" \
        "$(job_field "$jc" Restarts): $(grep '^\[meshtrain\|stopped\|resumed\|error' "$log" | tail -n 6 | tr '\n' ' ')"
fi
py params "slurm c: final parameters bit-identical to the uninterrupted run" runs/mt-a runs/mt-c
py losses "slurm c: losses bit-identical to the uninterrupted run" runs/mt-a runs/mt-c "$STEPS" 0
# e
log=slurm-mt-e-$je.out
estep=$(sed -n 's/^stopped on signal 10 after step \([0-9]*\);.*/\1/p' "$log" | head -n 1)
if [ "$esent" = 1 ] && [ "$(job_field "$je" ExitCode)" = 3:0 ] &&
    grep -q "got SIGUSR1 while the ranks are starting" "$log" &&
    grep -q "the ranks are up: forwarding the SIGUSR1" "$log" && [ -n "$estep" ] &&
    [ "$(readlink runs/mt-e/ckpt/latest)" = "step_$estep.h5" ]; then
    echo "ok slurm e: USR1 during start-up kept, forwarded once the ranks were up: checkpoint step_$estep.h5, exit 3"
else
    echo "FAIL slurm e: USR1 during start-up (sent $esent): exit $(job_field "$je" ExitCode)," \
        "latest $(readlink runs/mt-e/ckpt/latest 2>/dev/null): $(grep -v '^step' "$log" | tail -n 8 | tr '\n' ' ')"
fi
# Every step launched: a step started while an old one of the same job and step id was still tearing down
# fails here (see tests/slurm/cluster.sh), and srun may even exit 0 after it.
bad=$(grep -l "launch failed\|aborted before step completely launched" slurm-mt-*.out 2>/dev/null | tr '\n' ' ')
clash=$(grep -h "Address already in use\|already killed, do not launch" "$tmp"/cluster/log/*.log 2>/dev/null | head -n 2)
if [ -z "$bad$clash" ]; then
    echo "ok slurm: every job step launched (no step id clash between a requeued job's instances)"
else
    echo "FAIL slurm: a step did not launch: ${bad}$(printf '%s' "$clash" | tr '\n' ' ')"
fi
if [ -e runs/mt-a/slurm.lock ] || [ -e runs/mt-b/slurm.lock ] || [ -e runs/mt-c/slurm.lock ]; then
    echo "FAIL slurm: a finished job left its lock behind"
else
    echo "ok slurm: finished jobs release their locks"
fi
elapsed "local cluster checks done"
if [ -n "${MT_SLURM_KEEP:-}" ]; then cp -r "$tmp" "$MT_SLURM_KEEP"; fi
cluster_stop
cd "$root" || exit 1

# Multi-host variant: n1 and n2 in their own network namespaces on a private bridge, MPI over TCP only.
netns_skip=''
if ! command -v nsenter >/dev/null || ! command -v ip >/dev/null; then netns_skip="nsenter or ip missing"
elif ip link show mtbr0 >/dev/null 2>&1; then netns_skip="bridge mtbr0 already exists (another run?)"
elif ! unshare --net true 2>/dev/null; then netns_skip="cannot create network namespaces here"
fi
if [ -n "$netns_skip" ]; then
    echo "# skipped: multi-host variant: $netns_skip"
    exit 0
fi
MT_CLUSTER_PORT_BASE=$((MT_CLUSTER_PORT_BASE + 8))
if ! cluster_start "$tmp/cluster2" netns 2>"$tmp/netns.err"; then
    echo "# skipped: multi-host variant: network namespaces or bridge unusable here:" \
        "$(tail -n 2 "$tmp/netns.err" "$tmp"/cluster2/log/*.log 2>/dev/null | tr '\n' ' ')"
    exit 0
fi
echo "ok slurm netns: nodes n1 10.213.0.11 and n2 10.213.0.12 in their own network namespaces"
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=10.213.0.0/24 OMPI_MCA_oob_tcp_if_include=10.213.0.0/24
mkdir -p "$tmp/work2"
cd "$tmp/work2" || exit 1
STEPS2=100
jn=$("${SB[@]}" -t 5 -J mt-net "$root/slurm/pretrain.sbatch" "$tmp/run.json" --set train.steps=$STEPS2)
bin_train_ok=0
if wait_state "$jn" "$FINAL" 120 && [ "$(job_field "$jn" JobState)" = COMPLETED ]; then bin_train_ok=1; fi
timeout 120 "$root/bin/train" "$tmp/run.json" --set train.steps=$STEPS2 --set run_dir="$tmp/single2" \
    >"$tmp/single2.out" 2>&1
if [ "$bin_train_ok" = 1 ]; then
    echo "ok slurm netns a: 2 namespaced nodes x 1 task trained to the end over TCP (job $jn)"
else
    echo "FAIL slurm netns a: job $jn $(job_field "$jn" JobState): $(tail -n 4 "slurm-mt-net-$jn.out" | tr '\n' ' ')"
fi
py losses "slurm netns a: losses equal one process's to 1e-5" "$tmp/single2" runs/mt-net "$STEPS2" 1e-5
elapsed "multi-host variant done"
