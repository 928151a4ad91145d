#!/usr/bin/env bash
# test-tsan.sh — `npm run test:tsan`: the threaded C test drivers (test_threads:
# stress, fork and the thread cache's arenas, on every design alone, under the
# debug layer and behind the cache; test_pages: the page source's lock and its
# deferred calls) built with ThreadSanitizer (-DHEAPLAB_TSAN=ON, into
# build-tsan/) and run with scripts/tsan.supp, which names the one race heaplab
# makes on purpose (peek's lockless read of a live block's header) and why.
# Any other data race, lock-order inversion or thread leak fails the run.
#
# Scale: TSan is 5-15x slower, so the stress runs shorter (HEAPLAB_STRESS_OPS).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build-tsan"

cmake -S "$ROOT" -B "$OUT" -DHEAPLAB_TSAN=ON -DHEAPLAB_PRELOAD=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$OUT" -j2 --target test_threads test_pages >/dev/null

export HEAPLAB_STRESS_OPS="${HEAPLAB_STRESS_OPS:-100000}"
export HEAPLAB_STRESS_DEBUG_OPS="${HEAPLAB_STRESS_DEBUG_OPS:-20000}"
export TSAN_OPTIONS="suppressions=$ROOT/scripts/tsan.supp history_size=7 halt_on_error=0 exitcode=66 ${TSAN_OPTIONS:-}"

status=0
for name in test_threads test_pages; do
  log="$OUT/$name.tsan.log"
  start=$(date +%s)
  if "$OUT/tests/$name" > "$log" 2>&1 && ! grep -q "WARNING: ThreadSanitizer" "$log"; then
    echo "test-tsan: $name clean ($(( $(date +%s) - start ))s): $(tail -1 "$log")"
  else
    status=1
    echo "test-tsan: $name FAILED ($(( $(date +%s) - start ))s), see $log:"
    grep -A30 "WARNING: ThreadSanitizer" "$log" | head -60 || tail -30 "$log"
  fi
done
exit $status
