#!/usr/bin/env bash
# PGNAS's prior length scale l chosen as its paper chooses it (section 3.1, Table 4: "we choose l by
# grid search ... the one with the minimal error rate"): one PGNAS search per l of a grid, then the l
# whose best candidate scores highest on the held-out (validation) half. The test split never
# chooses: it is only reported. The grid's default is Table 4's (12, 50, 150, 250, 500).
#
#   jobs/pgnas-length-scale.sh --config inputs/pgnas-cifar10.ini
#   PGNAS_LENGTH_SCALES="50 150" jobs/pgnas-length-scale.sh --config inputs/pgnas-fmnist.ini --pgnas.candidates 50
#
# Variables: PROBNAS (binary, default build/probnas), PGNAS_LENGTH_SCALES (the grid),
# PGNAS_GRID_DIR (default outputs/pgnas-length-scale), PGNAS_RANKS (ranks per search under mpirun,
# default 1). The script runs from the repository root: relative paths in these variables and in
# the arguments are taken from there. Arguments go to every search (a config, data, budget). Each search runs in
# <dir>/l<value> (its output appended to <dir>/l<value>.log) and resumes from its checkpoints, so a
# killed grid started again carries on and a finished search is not redone. The summary is
# <dir>/length-scale.txt (probnas compare's table, best validation accuracy first) and
# <dir>/length-scale.csv; the last line printed names the chosen l and its run folder.
# Exit code: 0 when every search finished, else the first failing one's.
set -euo pipefail
cd "$(dirname "$0")/.."
PROBNAS=${PROBNAS:-build/probnas}
SCALES=${PGNAS_LENGTH_SCALES:-12 50 150 250 500}
DIR=${PGNAS_GRID_DIR:-outputs/pgnas-length-scale}
RANKS=${PGNAS_RANKS:-1}
[[ -x $PROBNAS ]] || { echo "pgnas-length-scale: no probnas binary at $PROBNAS (build it: jobs/build.sh)" >&2; exit 1; }
[[ -n $SCALES ]] || { echo "pgnas-length-scale: PGNAS_LENGTH_SCALES is empty" >&2; exit 1; }
for l in $SCALES; do  # all checked before any search (0 would mean pgnas.length_scale's automatic l)
  [[ $l =~ ^[0-9]+([.][0-9]+)?$ && ! $l =~ ^0+([.]0+)?$ ]] ||
    { echo "pgnas-length-scale: '$l' in PGNAS_LENGTH_SCALES is not a positive number" >&2; exit 1; }
done
[[ $DIR != *,* ]] || { echo "pgnas-length-scale: PGNAS_GRID_DIR '$DIR' has a comma (the summary is a CSV)" >&2; exit 1; }
mkdir -p "$DIR"
launch=("$PROBNAS")
((RANKS > 1)) && launch=(mpirun --oversubscribe --bind-to none -np "$RANKS" "$PROBNAS")
log() { printf '[pgnas-length-scale %s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$DIR/length-scale.log"; }

folders=()
for l in $SCALES; do
  run="$DIR/l$l"
  folders+=("$run")
  log "l = $l: searching -> $run"
  printf '\n==== pgnas-length-scale.sh %s: l = %s\n' "$(date -u +%FT%TZ)" "$l" >> "$run.log"
  "${launch[@]}" search --search.method pgnas --search.space multibranch "$@" --pgnas.length_scale "$l" --run.dir "$run" \
    >> "$run.log" 2>&1 || { rc=$?; log "l = $l: search failed (exit $rc), see $run.log"; exit "$rc"; }
done

"$PROBNAS" compare --nb201-table none --sort val --csv "$DIR/length-scale.csv" "${folders[@]}" > "$DIR/length-scale.txt"
cat "$DIR/length-scale.txt"
# The first data row of the CSV sorted by validation accuracy is the choice (the folders have no commas:
# l<number> under PGNAS_GRID_DIR; a grid directory with a comma is refused above).
best=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "search_val_acc") col = i }
                NR == 2 && col && $col != "" { print $1 }' "$DIR/length-scale.csv")
[[ -n $best ]] || { echo "pgnas-length-scale: no run has a validation accuracy (see $DIR/length-scale.csv)" >&2; exit 1; }
log "chosen on validation accuracy: l = ${best##*/l} ($best)"
