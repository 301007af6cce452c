#!/usr/bin/env bash
# Installs what is missing, builds everything (probnas, its tests and benchmarks), and runs every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
./jobs/install-deps.sh --tests
./jobs/build.sh -DPROBNAS_TESTS=ON -DPROBNAS_BENCH=ON
BUILD_DIR=${PROBNAS_BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j "$(nproc)" --timeout 900
