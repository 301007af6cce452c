# shellcheck shell=bash
# probnas-slurm.sh: shared by the batch scripts in jobs/ (sourced, not run). Sets the defaults every
# script uses and runs a probnas job step so that it checkpoints before the time limit and resumes.
#
# Variables (set them in the environment, e.g. sbatch --export=ALL,CONFIG=inputs/my.ini ...):
#   PROBNAS      the probnas binary (default: build/probnas under the submit folder)
#   SRUN_MPI     srun's --mpi plugin (default pmix: Debian's and most OpenMPI builds; see srun --mpi=list)
#   REQUEUE      1 (default): a job stopped by the time-limit signal requeues itself; 0: it just ends
#                (jobs/chain.sh sets 0: the next job of the chain goes on)
#
# Pitfalls this handles: bash runs a trap only between commands, so the step runs in the background
# and the script waits for it; USR1, USR2 and TERM (Slurm's --signal, scancel --signal, preemption)
# are all forwarded to the step, whose ranks write a checkpoint and exit with 75; newer srun does not
# inherit --cpus-per-task, so SRUN_CPUS_PER_TASK is set from it.

PROBNAS=${PROBNAS:-${SLURM_SUBMIT_DIR:-.}/build/probnas}
SRUN_MPI=${SRUN_MPI:-pmix}
REQUEUE=${REQUEUE:-1}
export SRUN_CPUS_PER_TASK=${SRUN_CPUS_PER_TASK:-${SLURM_CPUS_PER_TASK:-1}}
export OMPI_MCA_pcompress_base_silence_warning=1 PMIX_MCA_pcompress_base_silence_warning=1

if [ ! -x "$PROBNAS" ]; then
  echo "probnas-slurm: PROBNAS=$PROBNAS is not an executable: build probnas first (jobs/build.sh) and submit" \
       "from the repository folder, or set PROBNAS" >&2
  exit 1
fi

probnas_log() { echo "probnas-slurm [$(date '+%F %T')] job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}): $*" >&2; }

# probnas_forward SIG: passes a signal that reached the batch shell on to the running step.
probnas_forward() {
  probnas_log "SIG$1 received: forwarding it to the job step (the search checkpoints and exits with 75)"
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    scancel --signal="$1" "$SLURM_JOB_ID" 2>/dev/null || kill -s "$1" "$PROBNAS_STEP_PID" 2>/dev/null || true
  else
    kill -s "$1" "$PROBNAS_STEP_PID" 2>/dev/null || true
  fi
}

# probnas_step CMD...: runs CMD (an srun line) in the background, forwards signals to it and returns
# its exit code.
probnas_step() {
  "$@" &
  PROBNAS_STEP_PID=$!
  trap 'probnas_forward USR1' USR1
  trap 'probnas_forward USR2' USR2
  trap 'probnas_forward TERM' TERM
  local rc
  while :; do
    wait "$PROBNAS_STEP_PID"
    rc=$?
    # A trapped signal interrupts wait (status > 128) while the step still runs: wait again.
    kill -0 "$PROBNAS_STEP_PID" 2>/dev/null || break
  done
  trap - USR1 USR2 TERM
  return "$rc"
}

# probnas_finish RC: what the search's exit code means for the job. 0 done; 75 checkpointed before
# the end (requeue when REQUEUE=1); anything else a failure (the job fails, nothing is requeued).
probnas_finish() {
  local rc=$1
  case "$rc" in
    0) probnas_log "the search is complete" ; exit 0 ;;
    75)
      if [ "$REQUEUE" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
        probnas_log "checkpointed before the end: requeueing (the requeued job resumes from the checkpoint)"
        scontrol requeue "$SLURM_JOB_ID"
      else
        probnas_log "checkpointed before the end: the next job (or the same command) resumes it"
      fi
      exit 0 ;;
    *) probnas_log "probnas failed with exit code $rc (see the lines above)"; exit "$rc" ;;
  esac
}
