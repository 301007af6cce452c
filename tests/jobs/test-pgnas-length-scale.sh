#!/usr/bin/env bash
# jobs/pgnas-length-scale.sh on a tiny setting (seconds): a grid of two length scales on synthetic
# data, each a PGNAS search with its own pgnas.length_scale; the choice is the run with the best
# validation accuracy (checked against the runs' genotype.json); a second call redoes no search; a
# bad grid value is refused.
#   test-pgnas-length-scale.sh <probnas binary> <source dir>
set -euo pipefail
PROBNAS=$1
SRC=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

export PROBNAS PGNAS_GRID_DIR="$work/grid" PGNAS_LENGTH_SCALES="5 50000"
tiny=(--data.dataset synthetic --data.synthetic_count 512 --data.synthetic_size 8 --search.epochs 3
      --search.batch_size 32 --space.channels 4 --space.cells_per_stage 1 --space.kernels "1,3"
      --pgnas.candidates 3 --pgnas.test false --run.threads 1 --run.progress_interval 600)
"$SRC/jobs/pgnas-length-scale.sh" "${tiny[@]}" > "$work/first.txt" 2>&1 || { cat "$work/first.txt"; fail "the grid failed"; }
for l in 5 50000; do
  grep -Eq '^length_scale = '"$l"'$' "$PGNAS_GRID_DIR/l$l/config.ini" || fail "l$l did not run with pgnas.length_scale = $l"
done
[[ $(tail -n +2 "$PGNAS_GRID_DIR/length-scale.csv" | wc -l) == 2 ]] || { cat "$PGNAS_GRID_DIR/length-scale.csv"; fail "expected 2 rows"; }
# The chosen run is the one whose best candidate has the highest validation accuracy.
acc() { tr -d '\n' < "$1/genotype.json" | grep -o '"best": *{[^}]*' | grep -o '"val_acc": *[0-9.e-]*' | sed 's/.*: *//'; }
a5=$(acc "$PGNAS_GRID_DIR/l5"); a50000=$(acc "$PGNAS_GRID_DIR/l50000")
[[ -n $a5 && -n $a50000 ]] || fail "no val_acc in the runs' genotype.json"
expected=$(awk -v a="$a5" -v b="$a50000" 'BEGIN { print (b > a) ? 50000 : 5 }')
line=$(tail -1 "$work/first.txt")
[[ $line == *"chosen on validation accuracy: l = "* ]] || { cat "$work/first.txt"; fail "no choice line"; }
# (On this data the two differ: 0.109 and 0.086 when written.)
[[ $a5 != "$a50000" ]] || fail "the two runs tie ($a5): the test no longer tells the choice apart"
[[ $line == *"l = $expected ("* ]] || { cat "$work/first.txt"; fail "chose '$line', val acc l5 $a5, l50000 $a50000"; }

# Started again: nothing is searched again.
"$SRC/jobs/pgnas-length-scale.sh" "${tiny[@]}" > "$work/second.txt" 2>&1 || { cat "$work/second.txt"; fail "second call failed"; }
for l in 5 50000; do
  grep -q "nothing to do\|already finished\|finished before" "$PGNAS_GRID_DIR/l$l.log" || { cat "$PGNAS_GRID_DIR/l$l.log"; fail "l$l searched again"; }
done
second=$(tail -1 "$work/second.txt")
[[ ${second#*] } == "${line#*] }" ]] || fail "the choice changed on the second call: '$line', then '$second'"

# A grid value that is not a number is refused before any search.
set +e
PGNAS_LENGTH_SCALES="5 x" PGNAS_GRID_DIR="$work/bad" "$SRC/jobs/pgnas-length-scale.sh" "${tiny[@]}" > "$work/bad.txt" 2>&1
rc=$?
set -e
[[ $rc != 0 ]] || fail "a bad grid value was accepted"
grep -q "'x' in PGNAS_LENGTH_SCALES is not a positive number" "$work/bad.txt" || { cat "$work/bad.txt"; fail "no message"; }
[[ ! -e $work/bad/l5 ]] || fail "l = 5 was searched before the bad value was refused"
set +e
PGNAS_LENGTH_SCALES="0" PGNAS_GRID_DIR="$work/zero" "$SRC/jobs/pgnas-length-scale.sh" "${tiny[@]}" > "$work/zero.txt" 2>&1
rc=$?
set -e
[[ $rc != 0 ]] || fail "l = 0 (pgnas.length_scale's automatic value) was accepted"
echo "pgnas-length-scale.sh: a 2-value grid searched, chosen on validation accuracy, resumed without redoing"
