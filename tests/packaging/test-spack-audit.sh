#!/usr/bin/env bash
# Spack's own checks of packaging/spack (spack audit packages: directives, dependencies and their
# variants, attributes, fetchers, boilerplate), run with a private configuration so that the
# user's Spack set-up is left alone. Exit 77 (ctest: skipped) where no Spack is at hand: spack on
# PATH, or SPACK_ROOT/bin/spack.
#   tests/packaging/test-spack-audit.sh SOURCE_DIR
set -uo pipefail
SOURCE=$(cd "${1:?source folder}" && pwd)
SPACK=$(command -v spack || true)
[ -z "$SPACK" ] && [ -n "${SPACK_ROOT:-}" ] && [ -x "$SPACK_ROOT/bin/spack" ] && SPACK=$SPACK_ROOT/bin/spack
[ -n "$SPACK" ] || { echo "SKIP: no Spack here (put spack on PATH or set SPACK_ROOT to a Spack clone)"; exit 77; }
WORK=$(mktemp -d /tmp/probnas-spack-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# The repository comes in through a configuration scope of its own (-C): nothing is registered.
export SPACK_DISABLE_LOCAL_CONFIG=1 SPACK_USER_CACHE_PATH=$WORK/cache
mkdir -p "$WORK/scope"
printf 'repos:\n- %s\n' "$SOURCE/packaging/spack" > "$WORK/scope/repos.yaml"
spack_() { "$SPACK" -C "$WORK/scope" "$@"; }
spack_ info probnas > "$WORK/info.log" 2>&1 || { cat "$WORK/info.log"; echo "FAILED: spack info probnas"; exit 1; }
grep -q "^CMakePackage: *probnas" "$WORK/info.log" || { cat "$WORK/info.log"; echo "FAILED: spack info found no probnas"; exit 1; }
out=$(spack_ audit packages probnas 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || { echo "FAILED: spack audit packages probnas (exit $rc)"; exit 1; }
echo "$out" | grep -q "PKG-DIRECTIVES: 0 issues found" || { echo "FAILED: the audit did not check the directives"; exit 1; }
! echo "$out" | grep -Eq "[1-9][0-9]* issues? found" || { echo "FAILED: the audit found issues"; exit 1; }
echo "spack audit packages probnas: no issues (Spack $("$SPACK" --version))"
