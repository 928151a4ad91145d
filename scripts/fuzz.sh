#!/usr/bin/env bash
# fuzz.sh — `npm run fuzz`: a coverage-guided campaign (libFuzzer, with ASan +
# UBSan) of test/fuzz/fuzz_alloc.c against each allocator in turn.
#
#   npm run fuzz                          every allocator, FUZZ_SECONDS each (default 600)
#   npm run fuzz -- tlsf dlmalloc+debug   only these targets (NAME, NAME+debug or NAME+cache)
#   FUZZ_SECONDS=60 npm run fuzz          a shorter campaign
#   FUZZ_MAX_OPS=10000000 npm run fuzz    each target stops after 10 M operations
#                                         (or FUZZ_SECONDS, whichever comes first)
#
# Needs clang (libFuzzer ships with it): installed by scripts/install-fuzz-deps.sh
# when missing. Builds into build-fuzz/ (not build/, which cmake-js owns).
# Corpus: build-fuzz/corpus/TARGET/ — kept between runs, so a campaign resumes
# where the last one stopped; seeded with a few structured inputs on first use.
# Crashes: build-fuzz/crashes/TARGET/ (crash-*, leak-*, timeout-*); replay one
# without clang: build/tests/test_fuzz_smoke FILE with HEAPLAB_FUZZ_ALLOCATOR=TARGET.
# Each target's closing line says how many inputs and operations it ran.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build-fuzz"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-600}"
MAX_LEN="${FUZZ_MAX_LEN:-4096}"

command -v clang >/dev/null 2>&1 || bash "$ROOT/scripts/install-fuzz-deps.sh"

mkdir -p "$OUT"
allocators=()
defs=()
sources=("$ROOT/test/fuzz/fuzz_alloc.c" "$ROOT/native/debug/debug.c" "$ROOT/native/pages/mmap.c" "$ROOT/native/registry.c" "$ROOT/native/cache/cache.c")
for name in tlsf dlmalloc liballoc; do
  if [ -f "$ROOT/vendor/$name/$name.c" ] && [ -f "$ROOT/native/ops_$name.c" ]; then
    allocators+=("$name")
    defs+=("-DHL_HAVE_${name^^}=1")
    sources+=("$ROOT/vendor/$name/$name.c" "$ROOT/native/ops_$name.c")
  fi
done
echo "fuzz: building build-fuzz/fuzz_alloc (${allocators[*]}) with clang, libFuzzer + ASan + UBSan"
clang -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  "${defs[@]}" "${sources[@]}" -o "$OUT/fuzz_alloc"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=("${allocators[@]}"); fi

# A few seeds: short runs of each operation, so the corpus starts past "empty".
seed_corpus() {
  local dir="$1"
  [ -n "$(ls -A "$dir" 2>/dev/null)" ] && return 0
  printf '\x00\x01\x05\x10\x04\x01' > "$dir/seed-malloc-free"
  printf '\x01\x02\x08\x05\x0c\x03\x02\x30\x20\x07\x00' > "$dir/seed-memalign-realloc-check"
  printf '\x02\x03\x09\x07\x03\x00\x03\x03\x16\x40\x00\x00\x07\x00' > "$dir/seed-calloc-grow"
  # long inputs too: a heap is created and destroyed per input, so more
  # operations per input is more operations per second
  for i in 1 2 3 4; do head -c "$MAX_LEN" /dev/urandom > "$dir/seed-random-$i"; done
}

status=0
for target in "${targets[@]}"; do
  corpus="$OUT/corpus/$target" crashes="$OUT/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  seed_corpus "$corpus"
  echo "fuzz: $target for ${SECONDS_PER_TARGET}s, corpus $corpus"
  start=$(date +%s)
  if ! HEAPLAB_FUZZ_ALLOCATOR="$target" HEAPLAB_FUZZ_MAX_OPS="${FUZZ_MAX_OPS:-}" ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
      "$OUT/fuzz_alloc" -max_total_time="$SECONDS_PER_TARGET" -max_len="$MAX_LEN" -len_control=0 -timeout=20 \
      -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" \
      > "$OUT/$target.log" 2>&1; then
    status=1
    echo "fuzz: $target FOUND SOMETHING: see $OUT/$target.log and $crashes/"
  fi
  elapsed=$(( $(date +%s) - start ))
  ops=$(grep -o "fuzz_alloc: $target: .*" "$OUT/$target.log" | tail -1)
  echo "fuzz: $target: ${elapsed}s; ${ops:-no stats line}"
done
exit $status
