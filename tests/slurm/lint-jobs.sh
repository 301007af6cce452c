#!/usr/bin/env bash
# Lints every shell script in jobs/ (and the Slurm, packaging and multinode test scripts): bash -n always, shellcheck where
# it is installed (apt-get install shellcheck). Fails naming the script and the problem.
set -uo pipefail
SOURCE=${1:?source folder}
status=0
for f in "$SOURCE"/jobs/*.sh "$SOURCE"/jobs/*.sbatch "$SOURCE"/tests/slurm/*.sh "$SOURCE"/tests/packaging/*.sh "$SOURCE"/tests/multinode/*.sh; do
  bash -n "$f" || { echo "lint: bash -n fails on $f"; status=1; }
done
if command -v shellcheck >/dev/null; then
  (cd "$SOURCE" && shellcheck -x jobs/*.sh jobs/*.sbatch tests/slurm/*.sh tests/packaging/*.sh tests/multinode/*.sh) || { echo "lint: shellcheck found problems"; status=1; }
else
  echo "lint: shellcheck is not installed; bash -n only"
fi
exit "$status"
