#!/usr/bin/env bash
# probnas installed the way an HPC centre installs it, then used from the prefix alone:
#   1. cmake --install BUILD --prefix P installs bin/probnas, share/probnas/{inputs,jobs},
#      share/doc/probnas and share/modulefiles/probnas/<version>.lua, with the prefix written into
#      the Slurm scripts and the module file (a DESTDIR staging install writes the final prefix);
#   2. a copy of P, with the source tree and the build folder out of reach (a private mount
#      namespace puts empty folders over them where the kernel allows; else the checks below still
#      demand that every file came from the copy): probnas --version, a tiny search with the
#      installed quickstart config whose NAS-Bench-201 scores come from the installed table,
#      probnas compare with those scores, and probnas inspect of its checkpoint;
#   3. the module file with Debian's Lmod: module load probnas puts P/bin/probnas on PATH and sets
#      PROBNAS_HOME (skipped, saying so, without lmod).
#   tests/packaging/test-install.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
BUILD=$(cd "${1:?build folder}" && pwd)
SOURCE=$(cd "${2:?source folder}" && pwd)
SECONDS=0
say() { echo "test-install [${SECONDS}s]: $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/probnas-install-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
P=$WORK/prefix
version=$(sed -n 's/^project(probnas VERSION \([0-9.]*\).*/\1/p' "$SOURCE/CMakeLists.txt")
[ -n "$version" ] || fail "no version in $SOURCE/CMakeLists.txt"

# 1. The install.
cmake --install "$BUILD" --prefix "$P" > "$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "cmake --install"; }
for f in bin/probnas share/probnas/inputs/quickstart.ini share/probnas/inputs/nb201/nats_bench.csv \
         share/probnas/jobs/search.sbatch share/probnas/jobs/probnas-slurm.sh share/probnas/jobs/chain.sh \
         share/doc/probnas/README.md share/doc/probnas/checkpoints.md "share/modulefiles/probnas/$version.lua"; do
  [ -e "$P/$f" ] || fail "cmake --install did not install $f"
done
[ -x "$P/share/probnas/jobs/search.sbatch" ] || fail "the installed search.sbatch is not executable"
grep -qx "PROBNAS_INSTALLED_HOME=\"$P/share/probnas\"" "$P/share/probnas/jobs/search.sbatch" ||
  fail "the installed search.sbatch does not know its prefix"
grep -qx "prepend_path(\"PATH\", \"$P/bin\")" "$P/share/modulefiles/probnas/$version.lua" || fail "the module file does not name $P/bin"
grep -qx "PROBNAS_INSTALLED_BIN=\"$P/bin\"" "$P/share/probnas/jobs/probnas-slurm.sh" ||
  fail "the installed probnas-slurm.sh does not know the prefix's bin folder"
for s in "$P"/share/probnas/jobs/*.sbatch "$P"/share/probnas/jobs/*.sh; do bash -n "$s" || fail "bash -n $s"; done
if grep -q "^PROBNAS_BENCH:BOOL=ON" "$BUILD/CMakeCache.txt"; then
  [ -x "$P/libexec/probnas/bench_search_step" ] || fail "PROBNAS_BENCH=ON but no libexec/probnas/bench_search_step"
else
  [ ! -e "$P/libexec/probnas" ] || fail "benches installed without PROBNAS_BENCH"
fi
[ ! -e "$P/bin/bench_search_step" ] || fail "a bench was installed on PATH (bin/)"
# A staging install (DESTDIR, as distribution and Spack builds do) writes the final prefix, not the stage.
DESTDIR=$WORK/stage cmake --install "$BUILD" --prefix /opt/probnas-test > "$WORK/stage.log" 2>&1 ||
  { cat "$WORK/stage.log"; fail "DESTDIR install"; }
grep -qx 'PROBNAS_INSTALLED_HOME="/opt/probnas-test/share/probnas"' "$WORK/stage/opt/probnas-test/share/probnas/jobs/search.sbatch" ||
  fail "a DESTDIR install wrote the staging folder into the scripts"
[ -f "$WORK/stage/opt/probnas-test/share/modulefiles/probnas/$version.lua" ] || fail "a DESTDIR install put the module file elsewhere"
say "1. cmake --install: binary, configs, NB201 table, Slurm scripts, docs and module file in place"

# 2. From a copy of the prefix alone.
Q=$WORK/copy
cp -a "$P" "$Q"
data=(--data.limit 512)
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  { data=(--data.dataset synthetic --data.synthetic_count 512); say "no Fashion-MNIST: a synthetic data set instead"; }
cat > "$WORK/from-prefix.sh" <<INNER
set -euo pipefail
cd "$WORK"
unset PROBNAS_HOME PROBNAS_NB201_TABLE
export PATH=/usr/bin:/bin
[ ! -e "$SOURCE/CMakeLists.txt" ] && echo "source tree hidden" || echo "source tree visible"
"$Q/bin/probnas" --version
"$Q/bin/probnas" search --config "$Q/share/probnas/inputs/quickstart.ini" ${data[*]} --search.epochs 1 \
  --search.batch_size 32 --space.channels 4 --run.threads 1 --run.progress_interval 0 --run.dir "$WORK/run"
"$Q/bin/probnas" compare "$WORK/run"
"$Q/bin/probnas" inspect "$WORK/run/checkpoints/\$(cat "$WORK/run/checkpoints/LATEST")"
INNER
mkdir -p "$WORK/probe"
if unshare --mount --propagation private mount -t tmpfs none "$WORK/probe" 2>/dev/null; then
  unshare --mount --propagation private bash -c "mount -t tmpfs none '$SOURCE' && { [ -d '$BUILD' ] && mount -t tmpfs none '$BUILD' 2>/dev/null || true; } && bash '$WORK/from-prefix.sh'" \
    > "$WORK/prefix.log" 2>&1
else
  say "no private mount namespace here: the source tree stays visible (the log must still name the copy's files)"
  bash "$WORK/from-prefix.sh" > "$WORK/prefix.log" 2>&1
fi
rc=$?
[ "$rc" -eq 0 ] || { cat "$WORK/prefix.log"; fail "a command from the prefix failed (exit $rc)"; }
log=$WORK/prefix.log
grep -q "^probnas $version (LibTorch " "$log" || { cat "$log"; fail "probnas --version"; }
grep -q "^built with CUDA: \(yes\|no\); NCCL: \(yes\|no\)" "$log" || { cat "$log"; fail "--version does not say whether CUDA and NCCL are built in"; }
grep -q "NAS-Bench-201 scores from $Q/share/probnas/inputs/nb201/nats_bench.csv" "$log" ||
  { cat "$log"; fail "the search did not score with the installed table"; }
grep -q "NB201 C10 " "$log" || { cat "$log"; fail "compare printed no NAS-Bench-201 column"; }
grep -q "^valid: yes" "$log" || { cat "$log"; fail "inspect did not find the checkpoint valid"; }
grep -q "^NAS-Bench-201 (200 epochs, test accuracy): CIFAR-10 " "$log" || { cat "$log"; fail "inspect gave no NB201 scores"; }
say "2. from a copy of the prefix, $(sed -n 1p "$log"): $(sed -n 2p "$log"); search, compare with NB201 scores, inspect"

# 3. The module file, through Lmod.
LMOD_INIT=/usr/share/lmod/lmod/init/bash
if [ ! -f "$LMOD_INIT" ]; then
  say "3. SKIPPED: Debian's lmod is not installed (jobs/install-deps.sh --tests installs it)"
else
  out=$(env -i HOME="$WORK" PATH=/usr/bin:/bin bash -c "source $LMOD_INIT && module use '$P/share/modulefiles' &&
          module load probnas && command -v probnas && echo \"home=\$PROBNAS_HOME\" && probnas --version" 2>&1) ||
    { echo "$out"; fail "module load probnas"; }
  echo "$out" | grep -qx "$P/bin/probnas" || { echo "$out"; fail "module load probnas did not put $P/bin on PATH"; }
  echo "$out" | grep -qx "home=$P/share/probnas" || { echo "$out"; fail "the module did not set PROBNAS_HOME"; }
  echo "$out" | grep -q "^probnas $version " || { echo "$out"; fail "probnas --version through the module"; }
  say "3. module use $P/share/modulefiles; module load probnas: probnas --version works"
fi
say "passed in ${SECONDS}s"
