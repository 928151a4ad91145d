#!/bin/sh
# Installs the peer allocators `heaplab bench` measures beside heaplab's own
# (Debian/Ubuntu packages): jemalloc, mimalloc, tcmalloc (minimal).
# `npm run bench:peers` runs this, then the bench. Needs root (or sudo).
set -e
PACKAGES="libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4"
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-peers: run as root, or install: apt-get install -y $PACKAGES" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-peers: no apt-get here; install jemalloc, mimalloc and tcmalloc_minimal yourself and point" >&2
  echo "HEAPLAB_JEMALLOC / HEAPLAB_MIMALLOC / HEAPLAB_TCMALLOC at their shared libraries" >&2
  exit 1
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $PACKAGES
