// Runs every C test driver (ASan + UBSan builds from CMake) and checks its summary.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allocatorKinds } from '../lib/index.js';
import { buildDir, built } from './util.js';

const testsDir = join(buildDir, 'tests');
// test_pages: the mmap page source (cache, limit, resize_page);
// test_fuzz_smoke: a few seconds of the fuzz driver (test/fuzz/fuzz_alloc.c) on seeded random input;
// test_threads: 2 threads x 1M operations and fork under each allocator; test_debug: the debug layer.
const drivers = ['test_allocators', 'test_pages', ...allocatorKinds.map((k) => `test_${k}`), 'test_debug', 'test_threads', 'test_fuzz_smoke'];

describe('C test drivers (ASan + UBSan)', () => {
  it.each(drivers)('%s passes', (name) => {
    const path = join(testsDir, name);
    expect(built(path), `${path} was not built`).toBe(true);
    const run = spawnSync(path, [], {
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1' },
    });
    const summary = run.stdout.trim().split('\n').pop() ?? '';
    const match = /: (\d+) passed, (\d+) failed$/.exec(summary);
    expect(run.stderr.slice(-4000), `stderr of ${name}`).not.toMatch(/ERROR: (Address|Leak)Sanitizer|runtime error:/);
    expect(match, `summary line of ${name}: ${summary}\n${run.stderr.slice(-2000)}`).not.toBeNull();
    expect(Number(match![2]), run.stderr.slice(-2000)).toBe(0);
    expect(Number(match![1])).toBeGreaterThan(0);
    expect(run.status).toBe(0);
  });
});

// The threaded drivers again under ThreadSanitizer (scripts/test-tsan.sh builds them into
// build-tsan/ and fails on any race but the one named in scripts/tsan.supp).
function tsanBuilds(): boolean {
  const probe = spawnSync('sh', ['-c', 'echo "int main(void){return 0;}" | cc -fsanitize=thread -x c - -o /dev/null'], { encoding: 'utf8' });
  return probe.status === 0;
}

describe('C test drivers (ThreadSanitizer)', () => {
  it.skipIf(!tsanBuilds())('test_threads and test_pages have no data race', () => {
    const run = spawnSync('bash', [join(import.meta.dirname, '..', 'scripts', 'test-tsan.sh')], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(run.stdout, run.stderr.slice(-2000)).toMatch(/test-tsan: test_threads clean/);
    expect(run.stdout).toMatch(/test-tsan: test_pages clean/);
    expect(run.status, run.stdout.slice(-4000)).toBe(0);
  }, 600_000);
});
