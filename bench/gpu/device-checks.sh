#!/usr/bin/env bash
# One device run (the `run` tool, carry [".gpudeps"]; pack it first with bench/gpu/pack-deps.sh):
# builds the CUDA variant against the machine's CUDA LibTorch and NCCL, runs the GPU tests, then the
# search-step benches of issue 13 (NB201 C=16 N=5 and the DARTS space with 8 cells of 16 channels,
# batch 64, 32x32; DrNAS and DARTS) in eager mode and with each speed option, writing everything
# under $OUT (default: outputs/device-checks):
#   build.log  ctest-gpu.log  bench.jsonl  bench.log  env.txt
#   bash bench/gpu/device-checks.sh [--no-tests] [--no-bench]
# A call may run 600 s at most: run `--no-bench` first (build and tests), then `--no-tests` while the
# machine is still warm (the build in /tmp/build-cuda is kept; only missing targets are built).
set -uo pipefail
OUT=${OUT:-outputs/device-checks}
mkdir -p "$OUT"
tests=1 bench=1
for a in "$@"; do case "$a" in --no-tests) tests=0 ;; --no-bench) bench=0 ;; *) echo "unknown option $a" >&2; exit 2 ;; esac; done
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/progress.log"; }

stamp "unpacking dependencies"
bash .gpudeps/gpu-deps.sh unpack .gpudeps /tmp/gpudeps > "$OUT/unpack.log" 2>&1 || { stamp "unpack failed"; tail "$OUT/unpack.log"; exit 1; }
# shellcheck disable=SC1091
source /tmp/gpudeps/env.sh
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nvcc --version | tail -1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'
  echo "NCCL root: $PROBNAS_NCCL_ROOT"; nproc; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

stamp "configuring the CUDA build"
BUILD=/tmp/build-cuda
# shellcheck disable=SC2086
cmake -S . -B "$BUILD" -G Ninja $PROBNAS_GPU_CMAKE_ARGS -DPROBNAS_NCCL=ON -DPROBNAS_TESTS=ON -DPROBNAS_BENCH=ON \
      -DCMAKE_PREFIX_PATH="$PROBNAS_TORCH_PREFIX;/tmp/gpudeps/usr;/tmp/gpudeps/usr/lib/x86_64-linux-gnu/hdf5/serial" \
      > "$OUT/build.log" 2>&1 || { stamp "configure failed"; tail -30 "$OUT/build.log"; exit 1; }
grep "probnas:" "$OUT/build.log"
stamp "building"
targets="probnas bench_search_step"
[ "$tests" = 1 ] && targets="$targets probnas_gpu_tests"
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$(nproc)" --target $targets >> "$OUT/build.log" 2>&1 || { stamp "build failed"; grep -m20 -B2 -A8 "error" "$OUT/build.log"; exit 1; }
stamp "built"

if [ "$tests" = 1 ]; then
  stamp "GPU tests (1 and 2 ranks)"
  (cd "$BUILD" && ctest -L gpu --timeout 150 --output-on-failure) > "$OUT/ctest-gpu.log" 2>&1
  stamp "GPU tests: exit $?"; tail -15 "$OUT/ctest-gpu.log"
fi

if [ "$bench" = 1 ]; then
  B=("$BUILD/bench/bench_search_step" --device cuda --steps 20 --warmup 5 --profile-steps 5)
  run_case() {  # label, then bench options
    local label=$1; shift
    stamp "bench $label $*"
    timeout 90 "${B[@]}" "$@" 2> >(tee -a "$OUT/bench.log" >&2) | sed "s/^{/{\"case\":\"$label\",/" | tee -a "$OUT/bench.jsonl"
  }
  for m in drnas darts; do
    run_case eager --methods $m
    run_case cudnn_benchmark --methods $m --cudnn-benchmark
    run_case channels_last --methods $m --cudnn-benchmark --channels-last on
    run_case bf16 --methods $m --cudnn-benchmark --bf16
    run_case eager --methods $m --space darts --cells 8 --channels 16
    run_case cudnn_benchmark --methods $m --space darts --cells 8 --channels 16 --cudnn-benchmark
    run_case bf16 --methods $m --space darts --cells 8 --channels 16 --cudnn-benchmark --bf16
  done
  stamp "bench with NCCL on one rank (its kernels' share of the step)"
  timeout 90 mpirun -np 1 "${B[@]}" --methods drnas --micro-batches 2 --cudnn-benchmark --comm-backend nccl 2>>"$OUT/bench.log" |
    sed 's/^{/{"case":"nccl_1rank",/' | tee -a "$OUT/bench.jsonl"
fi
stamp "done"
