#!/usr/bin/env bash
# Configures and builds probnas (Release) into ${PROBNAS_BUILD_DIR:-build}. Extra arguments go to
# CMake's configure step, e.g. -DPROBNAS_TESTS=OFF or -DTorch_DIR=/path/to/libtorch/share/cmake/Torch.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${PROBNAS_BUILD_DIR:-build}
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
elif [ $# -gt 0 ]; then
  cmake -S . -B "$BUILD_DIR" "$@"
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
echo "build: probnas is $BUILD_DIR/probnas"
