#!/usr/bin/env bash
# install-fuzz-deps.sh — installs what `npm run fuzz` needs for coverage-guided
# fuzzing: clang (libFuzzer ships inside Debian's clang, with ASan and UBSan).
# Runs apt-get as root (or through sudo); does nothing when clang is already there.
set -euo pipefail
if command -v clang >/dev/null 2>&1; then
  echo "install-fuzz-deps: clang is already installed ($(command -v clang))"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-fuzz-deps: clang is missing and this is not root; install Debian's clang package" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null 2>&1 ||
  $SUDO apt-get install -y -qq --no-install-recommends clang
command -v clang >/dev/null 2>&1 || { echo "install-fuzz-deps: clang did not install" >&2; exit 1; }
echo "install-fuzz-deps: $(clang --version | head -1)"
