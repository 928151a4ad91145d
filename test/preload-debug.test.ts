// HEAPLAB_DEBUG=1 under each preload library: a deliberate overflow and a
// deliberate use after free in a plain C program are reported with the block's
// size and its requester (resolved by dladdr), and the process aborts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preloadLibraryPath } from '../lib/preload/preload.js';
import { allocatorKinds } from '../lib/kinds.js';
import { repoRoot } from './util.js';

const dir = mkdtempSync(join(tmpdir(), 'heaplab-debug-'));
const exe = join(dir, 'debug_victim');
beforeAll(() => {
  const build = spawnSync('gcc', ['-O1', '-g', '-rdynamic', '-o', exe, join(repoRoot, 'test', 'fixtures', 'debug_victim.c')], { encoding: 'utf8' });
  expect(build.status, build.stderr).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(kind: string, mode: string, debug = '1') {
  const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: preloadLibraryPath(kind), HEAPLAB_DEBUG: debug };
  return spawnSync(exe, [mode], { encoding: 'utf8', env, timeout: 30_000 });
}

describe.each(allocatorKinds)('libheaplab-%s.so with HEAPLAB_DEBUG=1', (kind) => {
  it('runs a correct program unchanged', () => {
    const r = run(kind, 'none');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('clean\n');
  });

  it('names an overflow by size and requester, and aborts', () => {
    const r = run(kind, 'overflow');
    expect(r.signal).toBe('SIGABRT');
    expect(r.stderr).toMatch(/heaplab: a 48-byte block requested by parse\+0x[0-9a-f]+ \(.*debug_victim\) was written past its end \(at byte 48\)/);
    expect(r.stderr).toMatch(/found by a call from main\+0x/);
  });

  it('names a use after free by size and requester, and aborts', () => {
    const r = run(kind, 'uaf');
    expect(r.signal).toBe('SIGABRT');
    expect(r.stderr).toMatch(/heaplab: a 48-byte block requested by parse\+0x[0-9a-f]+ \(.*debug_victim\) was written after it was freed \(at byte 3\)/);
  });

  it('is off unless HEAPLAB_DEBUG is exactly 1', () => {
    const r = run(kind, 'overflow', '0');
    expect(r.status).toBe(0);
  });
});
