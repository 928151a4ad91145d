// Node worker_threads, each with its own heaps, running at the same time as each
// other and as the main thread (test/fixtures/heap-worker.mjs imports dist/, which
// `npm test` builds first).
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap } from '../lib/index.js';

const workerUrl = new URL('./fixtures/heap-worker.mjs', import.meta.url);

interface Result {
  errors: number;
  done: number;
  problems: string[];
  blocksInUse: number;
}

function run(data: { kind: string; seed: number; ops: number; debug: boolean; leaveLive?: boolean }): Promise<{ result: Result; code: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl, { workerData: data });
    let result: Result | undefined;
    worker.on('message', (m: Result) => (result = m));
    worker.on('error', reject);
    worker.on('exit', (code) => (result ? resolve({ result, code }) : reject(new Error(`worker exited ${code} without a result`))));
  });
}

describe('worker_threads with their own heaps', () => {
  it('run every allocator concurrently (plain and debug), with the main thread busy too', async () => {
    const jobs = allocatorKinds.flatMap((kind, i) => [
      run({ kind, seed: 11 + i, ops: 20_000, debug: false }),
      run({ kind, seed: 23 + i, ops: 20_000, debug: false }),
      run({ kind, seed: 37 + i, ops: 5_000, debug: true }),
    ]);
    // meanwhile, the main thread's own heaps
    const mine = allocatorKinds.map((k) => createHeap(k));
    for (let n = 0; n < 2000; n++) {
      for (const h of mine) h.free(h.alloc((n * 37) % 5000).fill(n & 0xff));
      if (n % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    for (const h of mine) {
      h.check();
      h.destroy();
    }
    const results = await Promise.all(jobs);
    for (const { result, code } of results) {
      expect(code).toBe(0);
      expect(result.errors).toBe(0);
      expect(result.problems).toEqual([]);
      expect(result.done).toBeGreaterThanOrEqual(5_000);
    }
  });

  it('a worker that exits with live blocks and heaps does not crash the process', async () => {
    const results = await Promise.all(allocatorKinds.map((kind, i) => run({ kind, seed: 99 + i, ops: 3_000, debug: i === 0, leaveLive: true })));
    for (const { result, code } of results) {
      expect(code).toBe(0);
      expect(result.errors).toBe(0);
      expect(result.blocksInUse).toBeGreaterThan(0);
    }
    // the main thread's heaps still work after the workers' environments went away
    const h = createHeap('tlsf');
    h.free(h.alloc(100));
    h.check();
    h.destroy();
  });
});
