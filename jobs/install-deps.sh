#!/usr/bin/env bash
# Installs what probnas needs to build, test and run on Debian 12, skipping what is already there.
# Run as root (or with sudo available). Packages: the compiler and CMake, LibTorch (Debian's CPU
# build), OpenMPI, HDF5 (and hdf5-tools: h5dump, h5ls for looking into checkpoints),
# Boost.ProgramOptions, zlib, libjpeg-turbo's TurboJPEG (probnas convert decodes image folders
# with it, the loader decodes JPEG shards), nlohmann-json, GoogleTest, ccache, Graphviz (dot
# renders the cell pictures to SVG; without it probnas writes only their DOT text), shellcheck
# (the lint of jobs/) and Fashion-MNIST (the quick-start's data, in
# /usr/share/datasets/fashion-mnist). With --tests also chromium (the test that renders
# report.html in a headless browser) and lmod (the test that loads the installed module file).
# The Slurm test installs slurm-wlm and munge itself.
set -euo pipefail

PACKAGES=(g++ cmake ninja-build ccache pkg-config
          libtorch-dev libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libboost-program-options-dev
          zlib1g-dev libturbojpeg0-dev nlohmann-json3-dev libgtest-dev graphviz shellcheck
          dataset-fashion-mnist)
if [ "${1:-}" = "--tests" ]; then
  PACKAGES+=(chromium lmod)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything probnas needs is installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
