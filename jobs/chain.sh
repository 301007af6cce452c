#!/bin/bash
# Submits a chain of N jobs of jobs/search.sbatch that carry one search forward: each job starts
# when the one before has ended (--dependency=afterany), resumes the run folder from its newest
# checkpoint, and stops with a checkpoint at its time limit; none requeues itself. For clusters
# that forbid requeueing, or to plan a long search as N slots of the queue's maximum time.
#
#   jobs/chain.sh N CONFIG [sbatch options ...] [-- probnas options ...]
#   jobs/chain.sh 5 inputs/drnas-progressive-cifar10.ini --time=12:00:00 -- --run.device cuda
#
# RUN_DIR (default outputs/<config name>) and the variables of jobs/probnas-slurm.sh pass through.
# Prints the job ids, first to last. A job that fails (exit code not 0 or 75) still lets the next
# one start, which resumes from the last good checkpoint; jobs after the search is complete end at
# once. To stop a chain, scancel its remaining jobs. Do not pass --dependency or --export here.
set -euo pipefail
if [ $# -lt 2 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: jobs/chain.sh N CONFIG [sbatch options ...] [-- probnas options ...]" >&2
  exit 2
fi
n=$1 config=$2
shift 2
# cmake --install writes its share/probnas on the next line; a clone's copy runs from the repository.
PROBNAS_INSTALLED_HOME=""
if [ -n "$PROBNAS_INSTALLED_HOME" ]; then
  [ -f "$config" ] || [ ! -f "$PROBNAS_INSTALLED_HOME/$config" ] || config=$PROBNAS_INSTALLED_HOME/$config
else
  [ -f jobs/probnas-slurm.sh ] || { echo "chain.sh: run it from the repository folder (the jobs source jobs/probnas-slurm.sh there)" >&2; exit 2; }
fi
[ -f "$config" ] || { echo "chain.sh: CONFIG '$config' does not exist" >&2; exit 2; }
sbatch_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do sbatch_args+=("$1"); shift; done
[ $# -gt 0 ] && shift
run_dir=${RUN_DIR:-outputs/$(basename "$config" .ini)}
here=$(cd "$(dirname "$0")" && pwd)
previous=""
for ((i = 1; i <= n; i++)); do
  dependency=()
  [ -n "$previous" ] && dependency=(--dependency="afterany:$previous")
  # ${a[@]+"${a[@]}"}: an empty array under set -u on bash < 4.4.
  previous=$(sbatch --parsable ${dependency[@]+"${dependency[@]}"} ${sbatch_args[@]+"${sbatch_args[@]}"} --no-requeue \
               --export="ALL,CONFIG=$config,RUN_DIR=$run_dir,REQUEUE=0" "$here/search.sbatch" "$@")
  previous=${previous%%;*}
  echo "$previous"
done
