#!/usr/bin/env bash
# The method study: random search, DARTS, DrNAS, PARSEC, GibbsNAS and PGNAS searched on Fashion-MNIST
# with the same budget (inputs/study-fmnist.ini), every result retrained from scratch (PGNAS: tested as
# sampled), then `probnas compare` prints the table and writes study.csv.
#
#   jobs/study.sh                         # on this machine, into outputs/study/
#   STUDY_DIR=outputs/s1 STUDY_RANKS=2 jobs/study.sh --run.seed 1
#
# Variables: PROBNAS (binary, default build/probnas), STUDY_CONFIG (default inputs/study-fmnist.ini),
# STUDY_DIR (default outputs/study), STUDY_METHODS (default "random darts drnas parsec gibbsnas pgnas"),
# STUDY_TRAIN_IMAGES (training images of the retraining, default 15000; 0: all), STUDY_RANKS (ranks per
# run under mpirun, default 1), STUDY_SEARCH_ARGS and STUDY_TRAIN_ARGS (more options of every search or
# train, split on spaces). Arguments go to both (run.*, data.*, ckpt.* options). Every run resumes
# from its checkpoints, so a killed study started again carries on where it stopped; a finished
# step is not redone. Exit code: 0 when every run finished, else the first failing run's.
set -euo pipefail
cd "$(dirname "$0")/.."
PROBNAS=${PROBNAS:-build/probnas}
CONFIG=${STUDY_CONFIG:-inputs/study-fmnist.ini}
DIR=${STUDY_DIR:-outputs/study}
METHODS=${STUDY_METHODS:-random darts drnas parsec gibbsnas pgnas}
TRAIN_IMAGES=${STUDY_TRAIN_IMAGES:-15000}
RANKS=${STUDY_RANKS:-1}
[[ -x $PROBNAS ]] || { echo "study: no probnas binary at $PROBNAS (build it: jobs/build.sh)" >&2; exit 1; }
[[ -f $CONFIG ]] || { echo "study: no config $CONFIG" >&2; exit 1; }
mkdir -p "$DIR"

read -r -a search_args <<< "${STUDY_SEARCH_ARGS:-}"
read -r -a train_args <<< "${STUDY_TRAIN_ARGS:-}"
launch=("$PROBNAS")
if ((RANKS > 1)); then
  launch=(mpirun --oversubscribe --bind-to none -np "$RANKS" "$PROBNAS")
fi

started=$(date +%s)
log() { printf '[study %s +%ds] %s\n' "$(date -u +%H:%M:%S)" "$(($(date +%s) - started))" "$*" | tee -a "$DIR/study.log"; }
log "probnas $("$PROBNAS" --version | head -n 1 | cut -d' ' -f2-); $(nproc) cores; methods: $METHODS; config $CONFIG"

folders=()
for method in $METHODS; do
  run="$DIR/$method"
  space=nb201
  [[ $method == pgnas ]] && space=multibranch
  folders+=("$run")
  # A finished search is not redone: probnas search finds its last checkpoint and has nothing to do.
  log "$method: searching ($space space) -> $run"
  "${launch[@]}" search --config "$CONFIG" --search.method "$method" --search.space "$space" --run.dir "$run" "$@" \
    "${search_args[@]}" \
    > "$DIR/$method-search.log" 2>&1 || { rc=$?; log "$method: search failed (exit $rc), see $DIR/$method-search.log"; exit "$rc"; }
  log "$method: $(grep -E '^search finished' "$DIR/$method-search.log" | head -1)"
  if [[ -f $run/train/result.json ]]; then
    log "$method: trained before ($run/train/result.json)"
    continue
  fi
  log "$method: $([[ $method == pgnas ]] && echo testing the best candidate as sampled || echo retraining from scratch)"
  as_sampled=()
  [[ $method == pgnas ]] && as_sampled=(--train.epochs 0)  # PGNAS's result is a trained candidate
  "${launch[@]}" train --config "$CONFIG" --genotype "$run/genotype.json" --data.limit "$TRAIN_IMAGES" "$@" \
    "${train_args[@]}" "${as_sampled[@]}" \
    > "$DIR/$method-train.log" 2>&1 || { rc=$?; log "$method: train failed (exit $rc), see $DIR/$method-train.log"; exit "$rc"; }
  log "$method: $(tail -2 "$DIR/$method-train.log" | head -1)"
done

"$PROBNAS" compare --csv "$DIR/study.csv" "${folders[@]}" | tee "$DIR/study.txt"
log "done: $DIR/study.txt, $DIR/study.csv, and a report.html in every run folder"
