#!/usr/bin/env bash
# The run report in a real browser: two tiny searches on synthetic data (DrNAS on NAS-Bench-201 and
# DARTS on the DARTS space, seconds each) must leave report.html in their run folders; Debian's
# chromium then loads each one headless and
#   1. --dump-dom: the DOM has every section (summary, cells, curves, entropy, probabilities,
#      samples, topk), inline SVG, and no script;
#   2. --screenshot: the page renders to a PNG that is not blank (size, and colour variety where
#      python3 is there to decode it).
# Installs chromium with apt-get where it is missing (as root); exit 77 (ctest: skipped) with the
# reason where it cannot be installed. The screenshots are kept; their paths are printed.
#   tests/report/test-report-browser.sh PROBNAS_BINARY SOURCE_DIR
set -uo pipefail
PROBNAS=${1:?probnas binary}
SOURCE=${2:?source folder}
SECONDS=0
say() { echo "test-report-browser [${SECONDS}s]: $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

[ -x "$PROBNAS" ] || fail "no probnas binary at $PROBNAS"
[ -d "$SOURCE" ] || fail "no source folder $SOURCE"

find_browser() {
  local b
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}
BROWSER=$(find_browser)
if [ -z "$BROWSER" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: chromium is not installed and installing it needs root (apt-get install chromium)"; exit 77; }
  command -v apt-get >/dev/null 2>&1 || { echo "SKIP: chromium is not installed and there is no apt-get to install it"; exit 77; }
  say "installing chromium (apt-get)"
  if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    timeout 300 apt-get update -qq >/dev/null 2>&1 || { echo "SKIP: chromium is not installed and apt-get update failed"; exit 77; }
  fi
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
    { echo "SKIP: chromium is not installed and apt-get install chromium failed"; exit 77; }
  BROWSER=$(find_browser) || { echo "SKIP: chromium was installed but is not on PATH"; exit 77; }
fi
say "browser: $BROWSER ($("$BROWSER" --version 2>/dev/null | head -n 1))"

# Kept after the test (the screenshots); emptied at the start.
OUT=${PROBNAS_REPORT_TEST_DIR:-${TMPDIR:-/tmp}/probnas-report-browser-test}
rm -rf "$OUT"
mkdir -p "$OUT" || fail "cannot create $OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

TINY=(--data.dataset synthetic --data.synthetic_count 256 --data.synthetic_size 16 --space.channels 4
      --search.epochs 3 --search.batch_size 32 --run.progress_interval 0)

# A headless chromium with its own profile (concurrent runs do not share one).
browser() {
  timeout 180 "$BROWSER" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --disable-extensions --hide-scrollbars --user-data-dir="$OUT/profile" "$@"
}

# Colour variety of the top of a PNG (8-bit RGB/RGBA, not interlaced): prints "COLOURS NONWHITE%".
png_variety() {
  python3 - "$1" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat, ihdr = 8, b'', None
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT': idat += body
    pos += 12 + n
w, h, depth, ctype, _, _, interlace = ihdr
assert depth == 8 and ctype in (2, 6) and interlace == 0, 'unexpected PNG format %r' % (ihdr,)
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
rows = min(h, 900)  # enough to see the header, the summary and the first pictures
prev = bytearray(stride)
colours, nonwhite = set(), 0
for y in range(rows):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if f == 1:
        for i in range(bpp, stride): line[i] = (line[i] + line[i - bpp]) & 255
    elif f == 2:
        line = bytearray((a + b) & 255 for a, b in zip(line, prev))
    elif f == 3:
        for i in range(stride): line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
    elif f == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp * 4):  # every 4th pixel
        px = bytes(line[x:x + 3])
        colours.add(px)
        if px != b'\xff\xff\xff': nonwhite += 1
    prev = line
print(len(colours), round(100.0 * nonwhite / (rows * ((w + 3) // 4)), 1))
PY
}

check_run() {  # check_run NAME SEARCH_ARGS...: search, then the report in the browser
  local name=$1
  shift
  local run="$OUT/$name"
  say "$name: probnas search $*"
  "$PROBNAS" search "$@" "${TINY[@]}" --run.dir "$run" >"$OUT/$name.log" 2>&1 ||
    { tail -n 30 "$OUT/$name.log"; fail "$name: probnas search failed (log: $OUT/$name.log)"; }
  [ -s "$run/report.html" ] || fail "$name: probnas search did not write $run/report.html"
  say "$name: report.html is $(wc -c <"$run/report.html") bytes"

  browser --dump-dom "file://$run/report.html" >"$OUT/$name.dom.html" 2>"$OUT/$name.chromium.log" ||
    { tail -n 20 "$OUT/$name.chromium.log"; fail "$name: chromium --dump-dom failed"; }
  local id
  for id in summary cells curves entropy probabilities samples topk; do
    grep -q "<section id=\"$id\">" "$OUT/$name.dom.html" || fail "$name: the rendered DOM has no section '$id'"
  done
  local svgs
  svgs=$(grep -o '<svg' "$OUT/$name.dom.html" | wc -l)
  [ "$svgs" -ge 1 ] || fail "$name: the rendered DOM has no <svg>"
  ! grep -q '<script' "$OUT/$name.dom.html" || fail "$name: the report contains a script"
  grep -q 'class="cell-picture"' "$OUT/$name.dom.html" || fail "$name: no cell picture in the DOM"
  say "$name: DOM has all 7 sections and $svgs inline SVG pictures"

  local png="$OUT/$name.png"
  browser --screenshot="$png" --window-size=1280,4000 "file://$run/report.html" >>"$OUT/$name.chromium.log" 2>&1 ||
    { tail -n 20 "$OUT/$name.chromium.log"; fail "$name: chromium --screenshot failed"; }
  [ -s "$png" ] || fail "$name: chromium wrote no screenshot"
  local size
  size=$(wc -c <"$png")
  [ "$size" -gt 60000 ] || fail "$name: the screenshot is only $size bytes: a blank page?"
  if command -v python3 >/dev/null 2>&1; then
    local variety colours nonwhite
    variety=$(png_variety "$png") || fail "$name: cannot decode $png"
    read -r colours nonwhite <<<"$variety"
    [ "$colours" -ge 40 ] || fail "$name: the screenshot's top has only $colours colours: not rendered?"
    awk -v p="$nonwhite" 'BEGIN { exit !(p >= 5) }' || fail "$name: the screenshot's top is $nonwhite% non-white: blank?"
    say "$name: screenshot $png ($size bytes, $colours colours, $nonwhite% non-white at the top)"
  else
    say "$name: screenshot $png ($size bytes; python3 missing, colours not checked)"
  fi
}

cd "$SOURCE" || fail "cannot enter $SOURCE"
check_run drnas-nb201 --search.method drnas --search.space nb201 --space.cells_per_stage 1
check_run darts-darts --search.method darts --search.space darts --space.cells 3
rm -rf "$OUT/profile"
say "passed in ${SECONDS}s; screenshots: $OUT/drnas-nb201.png $OUT/darts-darts.png"
