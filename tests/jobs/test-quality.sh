#!/usr/bin/env bash
# jobs/quality.sh on a tiny setting (seconds, not its documented budget): every method of the
# benchmark searches 2 seeds of synthetic data, `probnas compare` scores them with the NB201 table
# and summarises each method; a second call redoes no search; a failing search stops the script with
# its exit code and names its log.
#   test-quality.sh <probnas binary> <source dir>
set -euo pipefail
PROBNAS=$1
SRC=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

export PROBNAS QUALITY_DIR="$work/q" QUALITY_SEEDS="0 1"
export QUALITY_DATA_ARGS="--data.dataset synthetic --data.synthetic_count 64 --data.synthetic_size 8"
tiny=(--search.epochs 1 --search.batch_size 16 --search.arch_batch_size 16 --space.channels 2
      --space.cells_per_stage 1 --parsec.samples 2 --random.candidates 3 --run.threads 1 --run.progress_interval 600)
"$SRC/jobs/quality.sh" "${tiny[@]}" > "$work/first.txt" 2>&1 || { cat "$work/first.txt"; fail "quality.sh failed"; }
table="$QUALITY_DIR/quality.txt"
[[ -f $table && -f $QUALITY_DIR/quality.csv ]] || fail "no quality.txt / quality.csv"
for m in drnas darts gdas parsec gibbsnas random; do
  grep -q "^$m " "$table" || grep -q " $m " "$table" || { cat "$table"; fail "no row of $m"; }
done
# 7 entries x 2 seeds, each with its NB201 CIFAR-10 accuracy, and a mean +- std line per method.
rows=$(tail -n +2 "$QUALITY_DIR/quality.csv" | wc -l)
[[ $rows == 14 ]] || { cat "$QUALITY_DIR/quality.csv"; fail "$rows CSV rows, expected 14"; }
grep -q "±" "$table" || { cat "$table"; fail "no mean ± std summary"; }
header=$(head -1 "$QUALITY_DIR/quality.csv")
[[ $header == *nb201_cifar10* ]] || fail "no NB201 column in: $header"
# GibbsNAS's two orders are told apart: their own rows, and a summary line each.
for order in 1 2; do
  grep -Eq "\"order\": ?$order" "$QUALITY_DIR/gibbsnas$order-seed0/genotype.json" || fail "gibbsnas$order did not run order $order"
  grep -q "gibbsnas \[gibbs.order=$order gibbs.arch_lr_schedule=cosine\] nb201 synthetic, 2 runs" "$table" || { cat "$table"; fail "no summary of order $order"; }
done
grep -q "darts \[darts.order=1\] nb201 synthetic, 2 runs" "$table" || { cat "$table"; fail "no summary of darts"; }
grep -q "parsec \[parsec.arch_lr=0.03\] nb201 synthetic, 2 runs" "$table" || { cat "$table"; fail "no summary of parsec at its default rate of pi"; }
grep -q "param-free .* ± " "$table" || { cat "$table"; fail "no parameter-free share in the summary"; }

# Started again: every search is found finished, nothing is redone, the same table comes out.
cp "$QUALITY_DIR/quality.csv" "$work/before.csv"
"$SRC/jobs/quality.sh" "${tiny[@]}" > "$work/second.txt" 2>&1 || { cat "$work/second.txt"; fail "second call failed"; }
diff <(cut -d, -f1-4 "$work/before.csv") <(cut -d, -f1-4 "$QUALITY_DIR/quality.csv") || fail "the table changed"
for log in "$QUALITY_DIR"/*-seed*.log; do
  grep -q "nothing to do\|already finished\|finished before" "$log" || { cat "$log"; fail "$log: searched again"; }
done

# A failing search stops the benchmark with its exit code and names its log.
set +e
QUALITY_DIR="$work/bad" QUALITY_METHODS="drnas" "$SRC/jobs/quality.sh" --search.epochs 0 > "$work/bad.txt" 2>&1
rc=$?
set -e
[[ $rc != 0 ]] || fail "a failing search returned 0"
grep -q "search failed (exit $rc), see $work/bad/drnas-seed0.log" "$work/bad.txt" || { cat "$work/bad.txt"; fail "no failure line"; }
echo "quality.sh: 14 tiny searches scored, resumed without redoing, a failure reported"
