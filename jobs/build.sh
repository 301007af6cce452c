#!/usr/bin/env bash
# Configures and builds probnas (Release) into ${PROBNAS_BUILD_DIR:-build}. Leading `--target NAME`
# arguments build only those targets (the quick start: --target probnas); the other arguments go to
# CMake's configure step, e.g. -DPROBNAS_TESTS=OFF or -DTorch_DIR=/path/to/libtorch/share/cmake/Torch.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=()
while [ $# -ge 2 ] && [ "$1" = "--target" ]; do
  TARGETS+=(--target "$2")
  shift 2
done
BUILD_DIR=${PROBNAS_BUILD_DIR:-build}
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
elif [ $# -gt 0 ]; then
  cmake -S . -B "$BUILD_DIR" "$@"
fi
cmake --build "$BUILD_DIR" -j "$(nproc)" ${TARGETS[@]+"${TARGETS[@]}"}
echo "build: probnas is $BUILD_DIR/probnas"
