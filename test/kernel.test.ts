// kernel/: heaplab's three allocators boot in a tiny x86-64 kernel under QEMU, on
// the kernel's own page frames, and make there exactly the decisions they make on
// the host: every allocator × trace digest the kernel prints over the serial line
// equals the host replay's. A page-frame allocator that hands a run out twice
// must make the allocators' checkers say so. Runs where qemu-system-x86_64 is
// installed (.ci/run installs it).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { offsetsDigest, readKernelBlob } from '../lib/kernel/blob.js';
import { replayNative } from '../lib/replay/replay.js';
import { allocatorKinds } from '../lib/index.js';
import { repoRoot } from './util.js';

const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
const out = join(repoRoot, 'build', 'kernel');

async function boot(elf: string): Promise<{ status: number; lines: string[] }> {
  const { qemuArgs } = (await import(join(repoRoot, 'scripts', 'kernel.mjs'))) as { qemuArgs: (elf: string) => string[] };
  const r = spawnSync('qemu-system-x86_64', qemuArgs(join(out, elf)), { encoding: 'utf8', timeout: 240_000 });
  // isa-debug-exit: QEMU's status is (kernel status << 1) | 1
  return { status: r.status === null ? -1 : r.status >> 1, lines: r.stdout.split('\n').filter((l) => l.startsWith('heaplab-kernel ')) };
}

describe.skipIf(!haveQemu)('the kernel', () => {
  it('builds freestanding', async () => {
    const { build } = (await import(join(repoRoot, 'scripts', 'kernel.mjs'))) as { build: () => Promise<number> };
    expect(await build()).toBeGreaterThanOrEqual(24); // 23 seeded traces and a recorded one
  }, 120_000);

  it('runs every allocator on every trace, checkers clean, and decides as the host does', async () => {
    const { status, lines } = await boot('heaplab-kernel.elf');
    const traces = readKernelBlob(join(out, 'traces.bin'));
    expect(traces.some((t) => t.name === 'recorded-sort')).toBe(true);
    const printed = new Map<string, string>();
    for (const l of lines) {
      const m = /^heaplab-kernel (\S+) (\S+) ops=(\d+) failures=(\d+) invariants=(\d+) digest=([0-9a-f]{16})$/.exec(l);
      if (!m) continue;
      expect(m[5], l).toBe('0');
      printed.set(`${m[1]} ${m[2]}`, m[6]!);
    }
    expect(printed.size).toBe(traces.length * allocatorKinds.length);
    for (const t of traces) {
      for (const kind of allocatorKinds) {
        const host = offsetsDigest(replayNative(kind, t, { offsets: true }).offsets!);
        expect(printed.get(`${kind} ${t.name}`), `${kind} ${t.name}`).toBe(host);
      }
    }
    expect(lines.at(-1)).toBe(`heaplab-kernel done lines=${printed.size} broken=0`);
    expect(status).toBe(0);
  }, 300_000);

  it('a page-frame allocator that hands a run out twice is caught by the checkers', async () => {
    const { status, lines } = await boot('heaplab-kernel-broken.elf');
    expect(status).toBe(1);
    expect(lines.some((l) => /invariants=[1-9]/.test(l))).toBe(true);
    expect(lines.at(-1)).toBe('heaplab-kernel stopped: a checker found the heap broken');
  }, 300_000);
});
