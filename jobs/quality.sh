#!/usr/bin/env bash
# The quality benchmark: the NAS-Bench-201 space searched on real CIFAR-10 by DrNAS, DARTS (1st
# order), GDAS, PARSEC, GibbsNAS (1st and 2nd order) and random search with weight sharing, several
# seeds each, on one proxy budget (inputs/quality-cifar10.ini). Every genotype is scored with the
# shipped NAS-Bench-201 table (CIFAR-10, CIFAR-100 and ImageNet16-120 test accuracy, and the share
# of parameter-free edges) by `probnas compare`, which prints mean +- std per method. The table only
# scores: hyper-parameters come from the papers or from validation accuracy (docs/benchmarks.md).
#
#   jobs/quality.sh                               # into outputs/quality/
#   QUALITY_SEEDS="0 1 2 3 4" jobs/quality.sh --run.threads 2
#
# Data, first that applies: QUALITY_DATA_ARGS (data options replacing the rest, split on spaces);
# QUALITY_CIFAR_BIN (a CIFAR-10 binary folder, data_batch_*.bin); else the JPEG tree
# QUALITY_JPEG (default ../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz), unpacked and converted
# once with `probnas convert` into QUALITY_DIR/data (a killed conversion resumes).
# Variables: PROBNAS (binary, default build/probnas), QUALITY_CONFIG (default
# inputs/quality-cifar10.ini), QUALITY_DIR (default outputs/quality), QUALITY_METHODS (default
# "drnas darts gdas parsec gibbsnas1 gibbsnas2 random"; gibbsnas1/2 = GibbsNAS of order 1/2),
# QUALITY_SEEDS (default "0 1 2"), QUALITY_RANKS (ranks per search under mpirun, default 1).
# The script runs from the repository root: relative paths in these variables and in the arguments
# are taken from there. Each search's output is appended to <QUALITY_DIR>/<method>-seed<k>.log.
# Arguments go to every search. Every search resumes from its checkpoints, so a killed benchmark
# started again carries on where it stopped, and a finished search is not redone. Exit code: 0 when
# every search finished, else the first failing one's.
set -euo pipefail
cd "$(dirname "$0")/.."
PROBNAS=${PROBNAS:-build/probnas}
CONFIG=${QUALITY_CONFIG:-inputs/quality-cifar10.ini}
DIR=${QUALITY_DIR:-outputs/quality}
METHODS=${QUALITY_METHODS:-drnas darts gdas parsec gibbsnas1 gibbsnas2 random}
SEEDS=${QUALITY_SEEDS:-0 1 2}
RANKS=${QUALITY_RANKS:-1}
JPEG=${QUALITY_JPEG:-../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz}
[[ -x $PROBNAS ]] || { echo "quality: no probnas binary at $PROBNAS (build it: jobs/build.sh)" >&2; exit 1; }
[[ -f $CONFIG ]] || { echo "quality: no config $CONFIG" >&2; exit 1; }
mkdir -p "$DIR"
started=$(date +%s)
log() { printf '[quality %s +%ds] %s\n' "$(date -u +%H:%M:%S)" "$(($(date +%s) - started))" "$*" | tee -a "$DIR/quality.log"; }
log "probnas $("$PROBNAS" --version | head -n 1 | cut -d' ' -f2-); $(nproc) cores; methods: $METHODS; seeds: $SEEDS; config $CONFIG"

# The data.
if [[ -n ${QUALITY_DATA_ARGS:-} ]]; then
  read -r -a data_args <<< "$QUALITY_DATA_ARGS"
elif [[ -n ${QUALITY_CIFAR_BIN:-} ]]; then
  data_args=(--data.dataset cifar10 --data.path "$QUALITY_CIFAR_BIN")
else
  [[ -f $JPEG ]] || { echo "quality: no CIFAR-10 at $JPEG; set QUALITY_JPEG, QUALITY_CIFAR_BIN or QUALITY_DATA_ARGS" >&2; exit 1; }
  shards="$DIR/data/cifar10-train"
  if [[ ! -f $shards/index.h5 ]]; then
    if [[ ! -d $DIR/data/jpeg/train ]]; then
      log "unpacking $JPEG"
      mkdir -p "$DIR/data/jpeg.partial"
      tar xzf "$JPEG" -C "$DIR/data/jpeg.partial"
      mv "$DIR/data/jpeg.partial" "$DIR/data/jpeg"
    fi
    log "converting the 50,000 training images -> $shards"
    "$PROBNAS" convert --from folder --in "$DIR/data/jpeg/train" --out "$shards" --size 32 --encoding raw \
      > "$DIR/convert.log" 2>&1 || { rc=$?; log "conversion failed (exit $rc), see $DIR/convert.log"; exit "$rc"; }
  fi
  data_args=(--data.dataset shards --data.path "$shards")
fi

launch=("$PROBNAS")
((RANKS > 1)) && launch=(mpirun --oversubscribe --bind-to none -np "$RANKS" "$PROBNAS")

folders=()
for method in $METHODS; do
  case $method in
    gibbsnas1) method_args=(--search.method gibbsnas --gibbs.order 1) ;;
    gibbsnas2) method_args=(--search.method gibbsnas --gibbs.order 2) ;;
    *) method_args=(--search.method "$method") ;;
  esac
  for seed in $SEEDS; do
    run="$DIR/$method-seed$seed"
    folders+=("$run")
    log "$method seed $seed: searching -> $run"
    printf '\n==== quality.sh %s: %s seed %s\n' "$(date -u +%FT%TZ)" "$method" "$seed" >> "$run.log"
    "${launch[@]}" search --config "$CONFIG" "${method_args[@]}" "${data_args[@]}" --run.seed "$seed" --run.dir "$run" \
      "$@" >> "$run.log" 2>&1 || { rc=$?; log "$method seed $seed: search failed (exit $rc), see $run.log"; exit "$rc"; }
    log "$method seed $seed: $(grep -E '^search finished|nothing to do' "$run.log" | tail -1)"
  done
done

"$PROBNAS" compare --csv "$DIR/quality.csv" "${folders[@]}" | tee "$DIR/quality.txt"
log "done: $DIR/quality.txt and $DIR/quality.csv"
