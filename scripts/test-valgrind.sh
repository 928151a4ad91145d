#!/usr/bin/env bash
# test-valgrind.sh — `npm run test:valgrind`: the C test drivers built WITHOUT
# sanitizers (-DHEAPLAB_SANITIZE=OFF, into build-valgrind/) and run under
# valgrind's memcheck, which fails the run (--error-exitcode=1) on any invalid
# read or write, use of uninitialised memory, or leak of libc memory.
#
# What memcheck sees: the drivers' own malloc'd memory and the allocators' page
# mappings as a whole (mmap'd memory is addressable and defined). It cannot see
# blocks inside those pages: that is ASan's and the debug layer's job.
#
# Scale: valgrind is 20-50x slower, so the long drivers run shorter here
# (HEAPLAB_STRESS_OPS, HEAPLAB_FUZZ_SMOKE_MS below); the full sizes run under
# ASan in `npm test`.
#
# Suppressions: none. (If one is ever needed, put it in scripts/valgrind.supp
# with a comment saying why, and it is passed with --suppressions below.)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build-valgrind"
command -v valgrind >/dev/null 2>&1 || { echo "test-valgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

cmake -S "$ROOT" -B "$OUT" -DHEAPLAB_SANITIZE=OFF -DHEAPLAB_PRELOAD=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$OUT" -j2 >/dev/null

SUPP=()
[ -f "$ROOT/scripts/valgrind.supp" ] && SUPP=(--suppressions="$ROOT/scripts/valgrind.supp")
export HEAPLAB_STRESS_OPS="${HEAPLAB_STRESS_OPS:-50000}"
export HEAPLAB_STRESS_DEBUG_OPS="${HEAPLAB_STRESS_DEBUG_OPS:-10000}"
export HEAPLAB_FUZZ_SMOKE_MS="${HEAPLAB_FUZZ_SMOKE_MS:-1000}"

status=0 passed=0 failed=0
for driver in "$OUT"/tests/test_*; do
  name=$(basename "$driver")
  log="$OUT/$name.valgrind.log"
  start=$(date +%s)
  if valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
      --show-leak-kinds=definite,indirect --track-origins=yes --child-silent-after-fork=yes --quiet \
      "${SUPP[@]}" "$driver" > "$log" 2>&1; then
    passed=$((passed + 1))
    echo "test-valgrind: $name clean ($(( $(date +%s) - start ))s): $(tail -1 "$log")"
  else
    failed=$((failed + 1))
    status=1
    echo "test-valgrind: $name FAILED ($(( $(date +%s) - start ))s), see $log:"
    tail -30 "$log"
  fi
done
echo "test-valgrind: $passed passed, $failed failed"
exit $status
