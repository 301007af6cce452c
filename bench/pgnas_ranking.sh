#!/bin/bash
# Parallel efficiency of PGNAS candidate ranking: bench_pgnas_ranking on 1 rank and on P ranks at the
# same threads per rank; prints both JSON lines and one summary line
#   {"bench":"pgnas_ranking_scaling","ranks":P,"rate_1":..,"rate_P":..,"efficiency":..}
# usage: bench/pgnas_ranking.sh [P] [bench options...]   (build/bench/bench_pgnas_ranking must exist)
set -euo pipefail
P=${1:-2}; shift || true
BIN=${BENCH_BIN:-build/bench/bench_pgnas_ranking}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PMIX_MCA_pcompress_base_silence_warning=1
one=$(mpirun --oversubscribe -np 1 "$BIN" "$@")
many=$(mpirun --oversubscribe -np "$P" "$BIN" "$@")
echo "$one"
echo "$many"
python3 - "$one" "$many" "$P" <<'PY'
import json, sys
a, b, p = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
print(json.dumps({"bench": "pgnas_ranking_scaling", "ranks": p, "threads_per_rank": a["threads_per_rank"],
                  "rate_1": a["candidates_per_s"], "rate_P": b["candidates_per_s"],
                  "efficiency": b["candidates_per_s"] / (p * a["candidates_per_s"])}))
PY
