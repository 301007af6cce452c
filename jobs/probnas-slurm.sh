# shellcheck shell=bash
# probnas-slurm.sh: shared by the batch scripts in jobs/ (sourced, not run). Sets the defaults every
# script uses and runs a probnas job step so that it checkpoints before the time limit and resumes.
#
# Variables (set them in the environment, e.g. sbatch --export=ALL,CONFIG=inputs/my.ini ...):
#   PROBNAS      the probnas binary (default: an installed script's own prefix's bin/probnas; a
#                clone's script: build/probnas under the submit folder)
#   SRUN_MPI     srun's --mpi plugin (default pmix: Debian's and most OpenMPI builds; see srun --mpi=list)
#   REQUEUE      1 (default): a job stopped by the time-limit signal requeues itself; 0: it just ends
#                (jobs/chain.sh sets 0: the next job of the chain goes on)
#
# Signals (they reach the batch shell: #SBATCH --signal=B:USR1@300, scancel --signal=... --batch,
# preemption):
#   USR1  the time limit is near: checkpoint, then requeue the job (REQUEUE=1) to resume
#   USR2  stop cleanly: checkpoint and end the job without requeueing (scancel --signal=USR2 --batch J)
#   TERM  checkpoint and end (preemption, scancel --full); requeueing is then the site's business
# Each is passed to the step's tasks as USR1 (probnas treats the three alike; srun would turn a
# TERM into SIGKILL for its tasks). A plain `scancel J` or the hard time limit kills the tasks
# without a checkpoint: the work since the last periodic checkpoint is lost.
#
# Pitfalls this handles: bash runs a trap only between commands, so the step runs in the background
# and the script waits for it; a signal that arrives before or between steps is remembered and
# honoured; newer srun does not inherit --cpus-per-task, so SRUN_CPUS_PER_TASK is set from it.

# PROBNAS_HOME: set by the script that sources this one (its tree: a clone, or an install's share/probnas).
PROBNAS_HOME=${PROBNAS_HOME:-${SLURM_SUBMIT_DIR:-.}}
# The installed copy's bin folder (cmake --install writes it on the next line; empty in a clone).
PROBNAS_INSTALLED_BIN=""
if [ -z "${PROBNAS:-}" ]; then
  if [ -n "${PROBNAS_INSTALLED_HOME:-}" ] && [ -n "$PROBNAS_INSTALLED_BIN" ]; then PROBNAS=$PROBNAS_INSTALLED_BIN/probnas
  else PROBNAS=${SLURM_SUBMIT_DIR:-.}/build/probnas; fi
fi
SRUN_MPI=${SRUN_MPI:-pmix}
REQUEUE=${REQUEUE:-1}
if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then export SRUN_CPUS_PER_TASK=${SRUN_CPUS_PER_TASK:-$SLURM_CPUS_PER_TASK}; fi
export OMPI_MCA_pcompress_base_silence_warning=1 PMIX_MCA_pcompress_base_silence_warning=1

probnas_log() { echo "probnas-slurm [$(date '+%F %T')] job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}): $*" >&2; }

if [ ! -x "$PROBNAS" ]; then
  probnas_log "PROBNAS=$PROBNAS is not an executable: build probnas first (jobs/build.sh) and submit from" \
              "the repository folder, submit the installed scripts (\$PROBNAS_HOME/jobs/), or set PROBNAS"
  exit 1
fi

probnas_log "probnas: $PROBNAS ($("$PROBNAS" --version 2>/dev/null | head -n 1))"

# probnas_input PATH: PATH if it exists, else PATH under $PROBNAS_HOME when it is there, so that
# CONFIG=inputs/x.ini names a shipped config from any submit folder.
probnas_input() {
  if [ -e "$1" ] || [ ! -e "$PROBNAS_HOME/$1" ]; then echo "$1"; else echo "$PROBNAS_HOME/$1"; fi
}

PROBNAS_STOP=""        # the first signal received: USR1, USR2 or TERM
PROBNAS_SIGNALLED=0    # set by the trap: a wait was interrupted
PROBNAS_STEP_PID=""

# probnas_signal SIG: remembers the signal and passes it on to a running step as USR1.
probnas_signal() {
  PROBNAS_SIGNALLED=1
  [ -n "$PROBNAS_STOP" ] || PROBNAS_STOP=$1
  if [ -z "$PROBNAS_STEP_PID" ]; then
    probnas_log "SIG$1 received between steps: no step is started after it"
    return
  fi
  probnas_log "SIG$1 received: passing it to the job step as USR1 (the ranks checkpoint and exit with 75)"
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    scancel --signal=USR1 "$SLURM_JOB_ID" 2>/dev/null || kill -s USR1 "$PROBNAS_STEP_PID" 2>/dev/null || true
  else
    kill -s USR1 "$PROBNAS_STEP_PID" 2>/dev/null || true
  fi
}
trap 'probnas_signal USR1' USR1
trap 'probnas_signal USR2' USR2
trap 'probnas_signal TERM' TERM

# probnas_step CMD...: runs CMD (an srun line) in the background and returns its exit code; 75
# without running it when a stop signal came before.
probnas_step() {
  if [ -n "$PROBNAS_STOP" ]; then return 75; fi
  "$@" &
  PROBNAS_STEP_PID=$!
  local rc
  while :; do
    PROBNAS_SIGNALLED=0
    wait "$PROBNAS_STEP_PID"
    rc=$?
    # A trapped signal interrupts wait (status > 128) while the step may still run: wait again
    # (a finished step's status is kept for the next wait).
    if [ "$PROBNAS_SIGNALLED" = 1 ] && [ "$rc" -gt 128 ]; then continue; fi
    break
  done
  PROBNAS_STEP_PID=""
  return "$rc"
}

# probnas_finish RC: what the search's exit code means for the job. 0 done; 75 checkpointed before
# the end (requeued after USR1 when REQUEUE=1); anything else a failure (the job fails, nothing is
# requeued).
probnas_finish() {
  local rc=$1
  if [ -n "$PROBNAS_STOP" ] && [ "$rc" -gt 128 ]; then
    # Killed by the signal before probnas could catch it (still starting up): its checkpoints stand.
    probnas_log "the step ended by signal (exit code $rc) after SIG$PROBNAS_STOP: resuming from its last checkpoint"
    rc=75
  fi
  case "$rc" in
    0) probnas_log "the search is complete"; exit 0 ;;
    75)
      if [ "${PROBNAS_STOP:-USR1}" = USR1 ] && [ "$REQUEUE" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
        probnas_log "checkpointed before the end: requeueing (the requeued job resumes from the checkpoint)"
        if ! scontrol requeue "$SLURM_JOB_ID"; then
          probnas_log "scontrol requeue failed (does the site allow requeueing?): submit the same job again to resume"
          exit 75
        fi
      else
        probnas_log "checkpointed before the end (SIG${PROBNAS_STOP:-?}): the next job of a chain, or the same" \
                    "submission again, resumes it"
      fi
      exit 0 ;;
    *) probnas_log "probnas failed with exit code $rc (see the lines above)"; exit "$rc" ;;
  esac
}
