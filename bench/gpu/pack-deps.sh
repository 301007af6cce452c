#!/usr/bin/env bash
# Packs what the GPU machine lacks for probnas into .gpudeps/ (not committed; `carry` it):
# ../shared/tools/gpu-deps.sh's packages (OpenMPI, HDF5, Boost.PO, GoogleTest, zlib, TurboJPEG) plus
# nlohmann-json's headers, which that list does not hold. Run in the repository root:
#   bench/gpu/pack-deps.sh [../shared/tools/gpu-deps.sh]
set -euo pipefail
tool=${1:-../shared/tools/gpu-deps.sh}
[ -x "$tool" ] || [ -f "$tool" ] || { echo "pack-deps: $tool not found (pass the path of gpu-deps.sh)" >&2; exit 2; }
rm -rf .gpudeps
bash "$tool" pack .gpudeps
(cd .gpudeps && apt-get download nlohmann-json3-dev >/dev/null)
grep -qx '/.gpudeps/' "$(git rev-parse --git-dir)/info/exclude" 2>/dev/null ||
  { mkdir -p "$(git rev-parse --git-dir)/info" && echo '/.gpudeps/' >> "$(git rev-parse --git-dir)/info/exclude"; }
echo "pack-deps: $(find .gpudeps -name '*.deb' | wc -l) packages, $(du -sh .gpudeps | cut -f1) in .gpudeps"
