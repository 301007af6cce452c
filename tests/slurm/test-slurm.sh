#!/usr/bin/env bash
# The jobs/ scripts under a real Slurm: installs Debian's slurm-wlm and munge where missing, brings
# up a two-node cluster on localhost (tests/slurm/local-slurm.sh: two slurmd daemons, Slurm's
# multiple-slurmd mode), and submits the real scripts with
# a small Fashion-MNIST search:
#   1. jobs/search.sbatch on 2 tasks completes (the reference);
#   2. the same search receives USR1 mid-run (as Slurm's --signal=B:USR1 would send it), checkpoints,
#      requeues itself, resumes and ends with the reference's genotype; metrics record the restart;
#   3. jobs/chain.sh 3: the first two jobs are signalled mid-run and end with a checkpoint, the third
#      finishes the run, again with the reference's genotype;
#   4. the installed jobs/search.sbatch (cmake --install into a temporary prefix), submitted from a
#      folder outside the repository, runs the prefix's probnas on the prefix's config;
#   5. jobs/search-multinode.sbatch, unmodified, on 2 nodes x 1 rank: MPI sees 2 nodes; same genotype.
# Exit 77 (ctest: skipped) with the reason where Slurm cannot be installed or Fashion-MNIST is missing.
#   tests/slurm/test-slurm.sh PROBNAS_BINARY SOURCE_DIR
set -uo pipefail
PROBNAS=${1:?probnas binary}
SOURCE=${2:?source folder}
HERE=$(cd "$(dirname "$0")" && pwd)
LOCAL="$HERE/local-slurm.sh"
SECONDS=0
say() { echo "test-slurm [${SECONDS}s]: $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || { echo "SKIP: the local Slurm cluster needs root"; exit 77; }
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  { echo "SKIP: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"; exit 77; }
"$LOCAL" available || { echo "SKIP: slurm-wlm and munge are neither installed nor installable here"; exit 77; }
"$LOCAL" install || { echo "SKIP: slurm-wlm and munge could not be installed (apt-get's messages above)"; exit 77; }

WORK=$(mktemp -d /tmp/probnas-slurm-test.XXXXXX)
cleanup() { "$LOCAL" stop "$WORK/cluster" >/dev/null 2>&1; rm -rf "$WORK"; }
trap cleanup EXIT
export LOCAL_SLURM_CRED_EXPIRE=10  # a requeued job waits cred_expire + 1 s before it may start again
# Two nodes (two slurmd daemons on this host, Slurm's multiple-slurmd mode); steps 1-4 use one.
out=$(LOCAL_SLURM_NODES=2 "$LOCAL" start "$WORK/cluster") || fail "the local cluster did not come up"
eval "$out"
say "cluster up ($SLURM_CONF)"
export PROBNAS OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$SOURCE" || fail "no $SOURCE"

cat > "$WORK/tiny.ini" <<'INI'
[run]
progress_interval = 0
[search]
method = drnas
epochs = 3
batch_size = 32
micro_batches = 2
[ckpt]
interval_steps = 4
[data]
limit = 1024
[space]
channels = 4
cells_per_stage = 1
INI
SB=(--ntasks-per-node=2 --cpus-per-task=1 --time=10)

state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
wait_end() {  # wait_end JOB SECONDS: until the job completed (0) or ended otherwise (1)
  local s
  for ((i = 0; i < $2 * 4; i++)); do
    s=$(state "$1")
    case "$s" in COMPLETED) return 0 ;; FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) return 1 ;; esac
    sleep 0.25
  done
  say "job $1 still $s after $2 s"
  return 1
}
wait_checkpoint_past() {  # wait_checkpoint_past RUN_DIR PREVIOUS SECONDS: until LATEST names another checkpoint
  for ((i = 0; i < $3 * 10; i++)); do
    if [ -f "$1/checkpoints/LATEST" ] && [ "$(cat "$1/checkpoints/LATEST")" != "$2" ]; then return 0; fi
    sleep 0.1
  done
  return 1
}
wait_running() {
  for ((i = 0; i < $2 * 4; i++)); do [ "$(state "$1")" = RUNNING ] && return 0; sleep 0.25; done
  return 1
}
# signalled_search NAME SIG: submits the search to $WORK/NAME, sends SIG to its batch shell once it
# has written a checkpoint, and prints the job id.
signalled_search() {
  local job
  job=$(sbatch --parsable "${SB[@]}" --output="$WORK/$1-%j.out" \
          --export="ALL,CONFIG=$WORK/tiny.ini,RUN_DIR=$WORK/$1" jobs/search.sbatch) || fail "sbatch"
  wait_checkpoint_past "$WORK/$1" "" 120 || fail "job $job wrote no checkpoint"
  scancel --signal="$2" --batch "$job" || fail "scancel --signal=$2 --batch $job"
  echo "$job"
}
genotype() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['genotype'])" "$1/genotype.json"; }

# 1. The reference: two tasks, uninterrupted.
ref=$(sbatch --parsable "${SB[@]}" --output="$WORK/ref-%j.out" \
        --export="ALL,CONFIG=$WORK/tiny.ini,RUN_DIR=$WORK/ref" jobs/search.sbatch) || fail "sbatch"
wait_end "$ref" 120 || { cat "$WORK"/ref-*.out; fail "the reference search (job $ref) did not complete"; }
grep -q "2 ranks" "$WORK/ref-$ref.out" || { cat "$WORK/ref-$ref.out"; fail "the reference did not run on 2 ranks"; }
reference=$(genotype "$WORK/ref")
say "1. jobs/search.sbatch on 2 tasks completed: $reference"

# 2. USR1 to the batch shell mid-run: checkpoint, requeue, resume, same genotype.
job=$(signalled_search sig USR1) || exit 1
wait_end "$job" 180 || { cat "$WORK/sig-$job.out"; fail "the signalled search (job $job) did not complete"; }
log="$WORK/sig-$job.out"
[ "$(grep -c "SIGUSR1 received: passing it to the job step" "$log")" -eq 1 ] ||
  { cat "$log"; fail "the batch script did not pass USR1 on exactly once"; }
grep -q "checkpointed before the end: requeueing" "$log" || { cat "$log"; fail "the job did not requeue itself"; }
grep -q "resuming from" "$log" || { cat "$log"; fail "the requeued job did not resume"; }
grep -q '"slurm_restart_count":1' "$WORK/sig/metrics.jsonl" || fail "metrics.jsonl does not record restart 1"
[ "$(genotype "$WORK/sig")" = "$reference" ] || fail "the requeued search found $(genotype "$WORK/sig"), not $reference"
say "2. USR1 mid-run: checkpointed, requeued, resumed, same genotype"

# 2b. USR2: checkpoint and end without requeueing (how a user stops a search cleanly).
job=$(signalled_search stop USR2) || exit 1
wait_end "$job" 120 || { cat "$WORK/stop-$job.out"; fail "the job stopped by USR2 did not end cleanly"; }
grep -q "checkpointed before the end (SIGUSR2)" "$WORK/stop-$job.out" || { cat "$WORK/stop-$job.out"; fail "no USR2 stop"; }
! grep -q "requeueing" "$WORK/stop-$job.out" || fail "USR2 requeued the job"
scontrol show job "$job" | grep -q "Restarts=0" || fail "the job stopped by USR2 was restarted"
if [ -f "$WORK/stop/genotype.json" ] && grep -q '"epochs_done": *3' "$WORK/stop/genotype.json"; then
  fail "the search stopped by USR2 finished anyway"
fi
say "2b. USR2 mid-run: checkpointed and ended, not requeued"

# 3. A chain of three jobs: the first two are stopped by USR1, the third finishes.
mapfile -t chain < <(RUN_DIR="$WORK/chain" jobs/chain.sh 3 "$WORK/tiny.ini" "${SB[@]}" --output="$WORK/chain-%j.out")
[ "${#chain[@]}" -eq 3 ] || fail "jobs/chain.sh printed ${#chain[@]} job ids, not 3"
previous=""
for k in 0 1; do
  wait_running "${chain[$k]}" 120 || fail "chain job ${chain[$k]} did not start"
  wait_checkpoint_past "$WORK/chain" "$previous" 120 || fail "chain job ${chain[$k]} wrote no checkpoint"
  scancel --signal=USR1 --batch "${chain[$k]}"
  wait_end "${chain[$k]}" 120 || { cat "$WORK/chain-${chain[$k]}.out"; fail "chain job ${chain[$k]} did not end cleanly"; }
  previous=$(cat "$WORK/chain/checkpoints/LATEST")
  grep -q "the next job of a chain, or the same" "$WORK/chain-${chain[$k]}.out" ||
    { cat "$WORK/chain-${chain[$k]}.out"; fail "chain job ${chain[$k]} did not stop with a checkpoint"; }
done
wait_end "${chain[2]}" 180 || { cat "$WORK/chain-${chain[2]}.out"; fail "the last chain job did not complete"; }
grep -q "the search is complete" "$WORK/chain-${chain[2]}.out" || fail "the last chain job did not finish the search"
[ "$(grep -c "resuming from" "$WORK"/chain-*.out | awk -F: '{s += $2} END {print s}')" -eq 2 ] ||
  fail "the chain did not resume twice"
[ "$(genotype "$WORK/chain")" = "$reference" ] || fail "the chain found $(genotype "$WORK/chain"), not $reference"
say "3. jobs/chain.sh 3: two jobs stopped with a checkpoint, the third finished; same genotype"

# 4. The installed scripts (cmake --install into a prefix), submitted from a folder outside the
#    repository with no PROBNAS set and a shipped config named as inputs/...: they find the prefix's
#    binary, helpers and config.
PREFIX=$WORK/prefix
cmake --install "$(dirname "$PROBNAS")" --prefix "$PREFIX" > "$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log"; fail "cmake --install $(dirname "$PROBNAS")"; }
mkdir -p "$WORK/elsewhere"
job=$(cd "$WORK/elsewhere" && env -u PROBNAS sbatch --parsable "${SB[@]}" --output="$WORK/inst-%j.out" \
        --export="ALL,CONFIG=inputs/quickstart.ini,RUN_DIR=$WORK/inst" "$PREFIX/share/probnas/jobs/search.sbatch" \
        --data.limit 1024 --search.epochs 1 --space.channels 4 --run.progress_interval 0) || fail "sbatch"
wait_end "$job" 180 || { cat "$WORK/inst-$job.out"; fail "the installed search.sbatch (job $job) did not complete"; }
grep -q "probnas: $PREFIX/bin/probnas (probnas " "$WORK/inst-$job.out" ||
  { cat "$WORK/inst-$job.out"; fail "the installed script did not run the prefix's probnas"; }
grep -q "config $PREFIX/share/probnas/inputs/quickstart.ini" "$WORK/inst-$job.out" ||
  { cat "$WORK/inst-$job.out"; fail "the installed script did not find inputs/quickstart.ini in the prefix"; }
[ -f "$WORK/inst/genotype.json" ] || fail "the installed script's search wrote no genotype.json"
say "4. the installed search.sbatch, submitted from outside the repository: prefix binary and config, completed"
# 5. jobs/search-multinode.sbatch, unmodified, on 2 nodes with one rank each (one thread, as the
#    reference's ranks have): MPI sees 2 nodes, and the search finds the reference's genotype.
job=$(sbatch --parsable --nodes=2 --ntasks-per-node=1 --cpus-per-task=1 --time=10 --output="$WORK/mn-%j.out" \
        --export="ALL,CONFIG=$WORK/tiny.ini,RUN_DIR=$WORK/mn" jobs/search-multinode.sbatch --run.threads 1) || fail "sbatch"
wait_end "$job" 180 || { cat "$WORK/mn-$job.out"; fail "search-multinode.sbatch on 2 nodes (job $job) did not complete"; }
scontrol show job "$job" | grep -q "NumNodes=2 " || { scontrol show job "$job"; fail "job $job did not get 2 nodes"; }
grep -q "2 ranks, cpu (1 threads), 2 node(s)" "$WORK/mn-$job.out" ||
  { cat "$WORK/mn-$job.out"; fail "the 2-node job did not run 2 ranks on 2 nodes"; }
[ "$(genotype "$WORK/mn")" = "$reference" ] || fail "the 2-node search found $(genotype "$WORK/mn"), not $reference"
say "5. jobs/search-multinode.sbatch on 2 nodes x 1 rank completed: same genotype"
say "passed in ${SECONDS}s"
