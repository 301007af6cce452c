#!/usr/bin/env bash
# The quick start: installs what is missing, builds the probnas program (Release; not the tests or
# benchmarks), and runs the main job, a DrNAS search of the NAS-Bench-201 space on Fashion-MNIST
# (inputs/quickstart.ini). Extra arguments are passed to `probnas search` (e.g. --run.seed 1).
set -euo pipefail
cd "$(dirname "$0")/.."
./jobs/install-deps.sh
./jobs/build.sh --target probnas
BUILD_DIR=${PROBNAS_BUILD_DIR:-build}
exec "$BUILD_DIR/probnas" search --config inputs/quickstart.ini "$@"
