# Shared body of slurm/pretrain.sbatch and slurm/finetune.sbatch: sourced, then `mt_main CONFIG [ARGS...]`.
# shellcheck shell=bash
#
# What a job does:
#   1. logs SLURM_JOB_ID, SLURM_RESTART_COUNT and the nodes (one "[meshtrain ...]" line per event);
#   2. derives the run directory: `--set run_dir=X` among ARGS, else the config's "run_dir", else
#      runs/<job name> when the job was given a name (sbatch -J NAME), else runs/<config file name>
#      (bin/train's own default); relative paths are relative to the submission directory;
#   3. takes RUN_DIR/slurm.lock (see mt_lock_acquire) or exits 2 if another live job holds it;
#   4. starts the ranks, `srun --mpi=pmix --kill-on-bad-exit=1 bin/train CONFIG --set run_dir=RUN_DIR ARGS`,
#      in the background and waits for them; the warning signal (USR1, from --signal=B:USR1@S, which Slurm
#      sends to this batch shell only) is forwarded to srun with `kill -USR1`, and srun passes it to every
#      task; bin/train finishes the step, writes RUN_DIR/ckpt/latest and exits 3. A signal that comes
#      while the ranks are starting is kept and forwarded once they are up (see mt_ranks_ready);
#   5. on exit code 3 requeues itself (`scontrol requeue $SLURM_JOB_ID`; same job id, same log file with
#      --open-mode=append); the requeued job starts bin/train again, which resumes from RUN_DIR/ckpt/latest.
# SIGTERM (scancel, the time limit, preemption) reaches the ranks from Slurm directly; the script then
# waits for the checkpoint but does not requeue (a cancelled job stays cancelled; a preempted job is
# requeued by Slurm itself). The lock stays after exit 3 (see mt_lock_acquire for why that is harmless).
# MESHTRAIN_REQUEUE=0 turns self-requeue off (chained jobs, see README).
#
# Environment: MESHTRAIN_HOME (the checkout; found by the .sbatch script), MESHTRAIN_TRAIN (the binary,
# default $MESHTRAIN_HOME/bin/train), MESHTRAIN_REQUEUE (1), MESHTRAIN_SRUN_ARGS (extra srun options,
# word-split), OMP_NUM_THREADS (default: --cpus-per-task).

MT_SRUN_PID=''
MT_PENDING_SIGNAL=''
MT_RUN_LOG=''
MT_RUN_LOG_SIZE0=0
MT_TERMINATED=0
MT_LOCK=''
MT_KEEP_LOCK=0

mt_log() {
    printf '[meshtrain %s job %s] %s\n' "$(date '+%F %T')" "${SLURM_JOB_ID:-none}" "$*"
}

# Prints the top-level string or number value of KEY in the JSON file CONFIG, or nothing.
mt_config_value() {
    local config=$1 key=$2
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$config" "$key" <<'PY' 2>/dev/null
import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
if isinstance(v, (str, int, float)) and not isinstance(v, bool):
    print(v)
PY
    elif command -v jq >/dev/null 2>&1; then
        jq -r --arg k "$key" '.[$k] // empty | select(type == "string" or type == "number")' "$config" \
            2>/dev/null
    fi
}

# Prints the value of the last `--set KEY=V` / `--set=KEY=V` among the arguments after KEY, or nothing.
mt_set_value() {
    local key=$1 v="" prev="" a
    shift
    for a in "$@"; do
        if [ "$prev" = --set ] && [ "${a%%=*}" = "$key" ]; then v=${a#*=}; fi
        case $a in --set="$key"=*) v=${a#--set="$key"=} ;; esac
        prev=$a
    done
    printf '%s' "$v"
}

mt_run_dir() {
    local config=$1 d name
    shift
    d=$(mt_set_value run_dir "$@")
    [ -n "$d" ] || d=$(mt_config_value "$config" run_dir)
    if [ -z "$d" ]; then
        name=${SLURM_JOB_NAME:-}
        case $name in
        '' | *.sbatch | *.sh | batch) name=$(basename "$config") name=${name%.*} ;;
        esac
        d=runs/$name
    fi
    printf '%s' "$d"
}

# Whether Slurm job ID is still alive (pending, running, requeued, completing...). "Invalid job id" and
# finished states mean dead; if the controller cannot be asked (3 tries), the job counts as alive: better
# refuse to start than let two jobs write one run directory.
mt_job_alive() {
    local id=$1 out state try
    for try in 1 2 3; do
        if out=$(scontrol -o show job "$id" 2>&1); then
            state=$(printf '%s\n' "$out" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1)
            case $state in
            COMPLETED | CANCELLED | FAILED | TIMEOUT | NODE_FAIL | BOOT_FAIL | DEADLINE | OUT_OF_MEMORY | \
                PREEMPTED) return 1 ;;
            *) MT_OWNER_STATE=$state; return 0 ;;
            esac
        fi
        case $out in *"Invalid job id"*) return 1 ;; esac
        [ "$try" -lt 3 ] && sleep 5
    done
    MT_OWNER_STATE="unknown (scontrol failed: $out)"
    return 0
}

# The lock is RUN_DIR/slurm.lock holding the owner's job id, created atomically (hard link of a complete
# temporary file, which works on NFS and Lustre where flock may not). A lock is honoured only while its
# owner job is alive according to the controller, so a job killed without cleanup (node crash, SIGKILL)
# blocks nobody; a requeued job finds its own id and continues. flock was not used: it needs the lock
# holder to stay alive on one node for the whole job, and its behaviour on cluster file systems (NFS lock
# recovery after a node crash, Lustre mounted without -o flock) varies by site.
mt_lock_acquire() {
    local lock=$1 tmp owner try
    tmp=$lock.$SLURM_JOB_ID.$$
    printf '%s\n%s %s\n' "$SLURM_JOB_ID" "$(hostname)" "$(date '+%F %T')" >"$tmp" || return 1
    for try in 1 2 3; do
        if ln "$tmp" "$lock" 2>/dev/null; then
            rm -f "$tmp"
            MT_LOCK=$lock
            return 0
        fi
        owner=$(head -n 1 "$lock" 2>/dev/null)
        if [ "$owner" = "$SLURM_JOB_ID" ]; then
            rm -f "$tmp"
            MT_LOCK=$lock
            mt_log "lock $lock already ours (restart ${SLURM_RESTART_COUNT:-0})"
            return 0
        fi
        if [ -n "$owner" ] && mt_job_alive "$owner"; then
            rm -f "$tmp"
            mt_log "refusing to start: $lock is held by job $owner ($MT_OWNER_STATE)"
            return 1
        fi
        mt_log "removing stale lock $lock of job ${owner:-?} (no longer alive)"
        # Two jobs removing the same stale lock at once: both re-try ln, one wins, the other finds a live
        # owner on its next round.
        rm -f "$lock"
        sleep 1
    done
    rm -f "$tmp"
    mt_log "refusing to start: could not take $lock"
    return 1
}

mt_lock_release() {
    if [ -n "$MT_LOCK" ] && [ "$MT_KEEP_LOCK" = 0 ] &&
        [ "$(head -n 1 "$MT_LOCK" 2>/dev/null)" = "${SLURM_JOB_ID:-}" ]; then
        rm -f "$MT_LOCK"
    fi
}

# Whether every rank of the current srun is up with its stop handlers in place: RUN_DIR/train.log has grown
# since srun started. Rank 0 writes its "model ..." line there only after collectives over all ranks
# (communicator split, agreement on the data), so every rank is past MPI_Init by then, and bin/train
# installs its handlers before MPI_Init. Before that moment a signal must not be forwarded: srun dies of a
# USR1 it gets before its own handlers are set up (the first few hundredths of a second), and it forwards
# one to tasks that may still be loading, whose default action for USR1 is to terminate.
mt_ranks_ready() {
    local size
    size=$(stat -c %s "$MT_RUN_LOG" 2>/dev/null) || return 1
    [ "$size" -gt "$MT_RUN_LOG_SIZE0" ]
}

# USR1 handler: forward to srun, which forwards it to every task of the step; while the ranks are still
# starting, keep it and let mt_main forward it as soon as they are up.
mt_forward() {
    local sig=$1
    if [ -n "$MT_SRUN_PID" ] && mt_ranks_ready; then
        mt_log "got SIG$sig: forwarding to the ranks (srun pid $MT_SRUN_PID)"
        kill -s "$sig" "$MT_SRUN_PID" 2>/dev/null || mt_log "forwarding SIG$sig failed: srun already gone"
    else
        mt_log "got SIG$sig while the ranks are starting: forwarding once they are up"
        MT_PENDING_SIGNAL=$sig
    fi
}

# Installed as soon as this file is sourced, at the start of the job: a warning signal that comes before
# srun has started (a time limit shorter than the warning offset, a requeued job) is kept instead of
# killing this shell.
trap 'mt_forward USR1' USR1

mt_on_term() {
    mt_log "got SIGTERM (cancel, time limit or preemption): ranks checkpoint; no self-requeue"
    MT_TERMINATED=1
}

mt_main() {
    if [ $# -lt 1 ]; then
        echo "usage: sbatch [OPTIONS] slurm/pretrain.sbatch RUN_CONFIG.json [--set key=value]..." >&2
        return 2
    fi
    local config=$1 run_dir threads_args=() rc
    shift
    if [ -n "${SLURM_SUBMIT_DIR:-}" ]; then cd "$SLURM_SUBMIT_DIR" || return 2; fi
    local train=${MESHTRAIN_TRAIN:-$MESHTRAIN_HOME/bin/train}
    mt_log "start: job ${SLURM_JOB_ID:-none} restart ${SLURM_RESTART_COUNT:-0} name ${SLURM_JOB_NAME:-?}" \
        "nodes ${SLURM_JOB_NUM_NODES:-?} (${SLURM_JOB_NODELIST:-?}) tasks ${SLURM_NTASKS:-?}" \
        "cpus/task ${SLURM_CPUS_PER_TASK:-?} config $config"
    if [ ! -r "$config" ]; then
        mt_log "error: cannot read run config '$config'"
        return 2
    fi
    if [ ! -x "$train" ]; then
        mt_log "error: no executable $train (set MESHTRAIN_HOME or MESHTRAIN_TRAIN; run make)"
        return 2
    fi
    run_dir=$(mt_run_dir "$config" "$@")
    if ! mkdir -p "$run_dir"; then
        mt_log "error: cannot create run directory $run_dir"
        return 2
    fi
    mt_log "run directory $run_dir"
    mt_lock_acquire "$run_dir/slurm.lock" || return 2
    trap mt_lock_release EXIT
    if [ -e "$run_dir/ckpt/latest" ]; then
        mt_log "resuming from $run_dir/ckpt/latest -> $(readlink "$run_dir/ckpt/latest" 2>/dev/null)"
    fi

    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
    if [ -n "${SLURM_CPUS_PER_TASK:-}" ] && [ -z "$(mt_set_value threads "$@")" ] &&
        [ -z "$(mt_config_value "$config" threads)" ]; then
        threads_args=(--set "threads=$SLURM_CPUS_PER_TASK")
    fi
    trap mt_on_term TERM
    local srun_args=()
    # shellcheck disable=SC2206 # word splitting of the user's extra srun options is intended
    [ -n "${MESHTRAIN_SRUN_ARGS:-}" ] && srun_args=($MESHTRAIN_SRUN_ARGS)
    MT_RUN_LOG=$run_dir/train.log
    MT_RUN_LOG_SIZE0=$(stat -c %s "$MT_RUN_LOG" 2>/dev/null || echo 0)
    srun --mpi=pmix --kill-on-bad-exit=1 "${srun_args[@]}" \
        "$train" "$config" --set "run_dir=$run_dir" "${threads_args[@]}" "$@" &
    MT_SRUN_PID=$!
    # A trapped signal interrupts `wait`; wait again until srun is gone, then collect its status. A signal
    # kept while the ranks were starting goes out once they are up (checked every second).
    local pending
    while kill -0 "$MT_SRUN_PID" 2>/dev/null; do
        if [ -z "$MT_PENDING_SIGNAL" ]; then
            wait "$MT_SRUN_PID"
        elif mt_ranks_ready; then
            pending=$MT_PENDING_SIGNAL
            MT_PENDING_SIGNAL=''
            mt_log "the ranks are up: forwarding the SIG$pending that came during start-up"
            kill -s "$pending" "$MT_SRUN_PID" 2>/dev/null || mt_log "forwarding SIG$pending failed: srun already gone"
        else
            sleep 1
        fi
    done
    wait "$MT_SRUN_PID"
    rc=$?
    # srun can exit 0 when the step never launched ("task N launch failed"); a training run always logs.
    if [ "$rc" = 0 ] && ! mt_ranks_ready && ! printf '%s\n' "$@" | grep -qx -e --dry-run -e --help -e -h; then
        mt_log "srun exited 0 but bin/train never logged to $MT_RUN_LOG: the step did not launch"
        rc=1
    fi
    case $rc in
    0)
        mt_log "bin/train finished (exit 0)"
        return 0
        ;;
    3)
        mt_log "bin/train stopped after writing a checkpoint (exit 3)"
        # Keep the lock: Slurm may requeue this job (preemption, scontrol requeue); if it does not, the
        # lock is stale as soon as the job has ended and blocks nobody.
        MT_KEEP_LOCK=1
        if [ "$MT_TERMINATED" = 1 ] || [ "${MESHTRAIN_REQUEUE:-1}" = 0 ] || [ -z "${SLURM_JOB_ID:-}" ]; then
            mt_log "not requeueing; a new job with the same config and run directory resumes"
            return 3
        fi
        mt_log "requeueing job $SLURM_JOB_ID"
        if scontrol requeue "$SLURM_JOB_ID"; then
            # Slurm now ends this instance; the requeued one starts this script again.
            sleep 60
            return 3
        fi
        mt_log "scontrol requeue failed (job submitted with --no-requeue?); resubmit to resume"
        return 3
        ;;
    *)
        mt_log "bin/train failed (exit $rc)"
        return "$rc"
        ;;
    esac
}
