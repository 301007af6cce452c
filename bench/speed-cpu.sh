#!/usr/bin/env bash
# The CPU search-step figures of docs/benchmarks.md, before and after the fused, channels-last step,
# alternated in one run: DrNAS and DARTS (1st order) on NB201 (C=16, N=5) and on the DARTS space
# (8 cells, C=16, K=1), batch 64, 2 threads. "before" is today's reference path (one edge at a time,
# NCHW: --fused off --channels-last off); "after" is the engine's default (--fused auto
# --channels-last auto). Prints one JSON line per run, tagged with "config" and "round".
# usage: bench/speed-cpu.sh <build dir> [rounds, default 2] > results.jsonl
set -euo pipefail
BUILD=${1:?build dir}; ROUNDS=${2:-2}
BENCH="$BUILD/bench/bench_search_step"
run() {  # <config> <round> <args...>
  local config=$1 round=$2; shift 2
  "$BENCH" --threads 2 "$@" 2>/dev/null | tail -n +1 | while read -r line; do
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); j["config"]=sys.argv[2]; j["round"]=int(sys.argv[3]); print(json.dumps(j))' \
      "$line" "$config" "$round"
  done
}
for r in $(seq 1 "$ROUNDS"); do
  for m in drnas darts; do
    run before "$r" --methods $m --warmup 2 --steps 5 --fused off --channels-last off
    run after "$r" --methods $m --warmup 2 --steps 5
    run before "$r" --methods $m --space darts --cells 8 --channels 16 --warmup 1 --steps 2 --fused off --channels-last off
    run after "$r" --methods $m --space darts --cells 8 --channels 16 --warmup 1 --steps 2
  done
done
