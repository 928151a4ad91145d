// One heap, many threads: heap.share() in the main thread, attachHeap() in
// workers; all allocate and free on the same C heap at once, contents checked.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { allocatorKinds, attachHeap, createHeap, type SharedHeapHandle } from '../lib/index.js';
import { preloadLibraryPath } from '../lib/preload/preload.js';
import { codeOf } from './util.js';

const workerUrl = new URL('./fixtures/shared-heap-worker.mjs', import.meta.url);

function start(data: { handle: SharedHeapHandle; seed: number; ops: number; mode?: string }): { worker: Worker; messages: unknown[]; exited: Promise<number> } {
  const worker = new Worker(workerUrl, { workerData: data });
  const messages: unknown[] = [];
  worker.on('message', (m) => messages.push(m));
  const exited = new Promise<number>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', resolve);
  });
  return { worker, messages, exited };
}

const nextMessage = (w: Worker): Promise<any> => new Promise((resolve) => w.once('message', resolve));

describe.each([...allocatorKinds.map((k) => [k, false] as const), ...allocatorKinds.map((k) => [k, true] as const)])(
  '%s (cache: %s) shared across workers',
  (kind, cache) => {
    it('two workers and the main thread allocate and free on one heap; contents and check() hold', async () => {
      const heap = createHeap(kind, { cache });
      const handle = heap.share();
      expect(handle).toMatchObject({ heaplab: 'shared-heap', kind });
      const a = start({ handle, seed: 3, ops: 20_000 });
      const b = start({ handle, seed: 5, ops: 20_000 });
      // meanwhile the main thread works the same heap
      const mine: Buffer[] = [];
      for (let n = 0; n < 20_000; n++) {
        if (mine.length > 50 && n % 3 === 0) {
          const buf = mine.splice(n % mine.length, 1)[0]!;
          expect(buf.every((x) => x === (buf.length & 0xff))).toBe(true);
          heap.free(buf);
        } else mine.push(heap.alloc(1 + (n * 37) % 2000).fill(((1 + (n * 37) % 2000)) & 0xff));
        if (n % 2000 === 0) await new Promise((r) => setImmediate(r));
      }
      expect(await a.exited).toBe(0);
      expect(await b.exited).toBe(0);
      for (const m of [...a.messages, ...b.messages] as Array<{ bad: number }>) expect(m.bad).toBe(0);
      for (const buf of mine) {
        expect(buf.every((x) => x === (buf.length & 0xff))).toBe(true);
        heap.free(buf);
      }
      heap.check();
      // the counters are the heap's: every thread's allocations, all freed now
      const s = heap.stats();
      expect(s.blocksInUse).toBe(0);
      expect(s.allocs).toBeGreaterThan(20_000);
      // with the cache, the workers refilled from instances of the design of their own
      // (each worker's thread was given the arena with the fewest live threads)
      if (cache) expect(s.threadCacheArenas).toBeGreaterThanOrEqual(2);
      else expect(s.threadCacheArenas).toBe(0);
      heap.destroy();
    });
  },
);

describe('sharing: lifetimes and errors', () => {
  it('a worker that exits with live blocks lets its hold go; the heap stays whole for the others', async () => {
    const heap = createHeap('tlsf');
    const w = start({ handle: heap.share(), seed: 7, ops: 5000, mode: 'exit-live' });
    expect(await w.exited).toBe(0);
    expect((w.messages[0] as { live: number }).live).toBeGreaterThan(0);
    const b = heap.alloc(1000).fill(1);
    heap.check();
    heap.free(b);
    heap.destroy();
  });

  it('destroy() in one thread ends the heap for all: their calls say ERR_HEAPLAB_DESTROYED, their Buffers stay readable', async () => {
    const heap = createHeap('dlmalloc', { cache: true });
    const w = start({ handle: heap.share(), seed: 11, ops: 3000, mode: 'wait-for-destroy' });
    expect((await nextMessage(w.worker)).ready).toBe(true);
    const mine = heap.alloc(100);
    heap.destroy();
    expect(mine.length).toBe(0); // this thread's Buffers are detached
    w.worker.postMessage('go');
    const report = await nextMessage(w.worker);
    expect(report).toEqual({ code: 'ERR_HEAPLAB_DESTROYED', intact: true, bad: 0 });
    expect(await w.exited).toBe(0);
  });

  it('a thread whose heap another thread ended lets its hold go at exit without touching freed memory', () => {
    // Each round a worker exits with live Buffers after destroy() in the main thread: its
    // Buffers' finalizers and its hold's teardown then run in the worker's cleanup, in
    // either order. A finalizer that left its Token listed made the teardown write to the
    // freed Token; glibc caught it now and then (an abort of the whole test process), and
    // heaplab's own debug layer, preloaded under node, catches it every time.
    const run = spawnSync(process.execPath, [fileURLToPath(new URL('./fixtures/shared-destroy-rounds.mjs', import.meta.url)), '20'], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, LD_PRELOAD: preloadLibraryPath('tlsf'), HEAPLAB_DEBUG: '1' },
    });
    expect(run.stderr).not.toMatch(/HEAPLAB_DEBUG/);
    expect(run.stdout.trim(), run.stderr.slice(-2000)).toBe('ok 20');
    expect(run.status).toBe(0);
  }, 120_000);

  it('close() gives up one hold: the heap goes on for the thread that still holds it', async () => {
    const heap = createHeap('liballoc');
    const handle = heap.share();
    const second = attachHeap(handle); // a second hold, here in the same thread
    const kept = heap.alloc(64).fill(9);
    const theirs = second.alloc(64).fill(4);
    expect(codeOf(() => heap.free(theirs))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER'); // each hold frees its own blocks
    second.close();
    expect(theirs.length).toBe(0);
    expect(kept.every((x) => x === 9)).toBe(true);
    expect(codeOf(() => second.alloc(1))).toBe('ERR_HEAPLAB_DESTROYED');
    heap.free(kept);
    heap.check();
    expect(heap.stats().blocksInUse).toBe(0);
    heap.destroy();
    expect(codeOf(() => attachHeap(handle))).toBe('ERR_HEAPLAB_DESTROYED');
  });

  it('refuses what cannot be shared or attached, and a heap itself cannot be posted', () => {
    const debugHeap = createHeap('tlsf', { debug: true });
    expect(codeOf(() => debugHeap.share())).toBe('ERR_HEAPLAB_UNSUPPORTED');
    debugHeap.destroy();
    for (const bad of [undefined, null, {}, { heaplab: 'shared-heap', kind: 'tlsf', key: -1 }, { heaplab: 'shared-heap', kind: 'nope', key: 1 }]) {
      expect(codeOf(() => attachHeap(bad as never))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    }
    expect(codeOf(() => attachHeap({ heaplab: 'shared-heap', kind: 'tlsf', key: 2 ** 40 }))).toBe('ERR_HEAPLAB_DESTROYED');
    for (const heap of [createHeap('tlsf'), createHeap('tlsf', { engine: 'ts', limit: 1 << 20 })]) {
      expect(codeOf(() => structuredClone(heap))).toBe('ERR_HEAPLAB_UNSUPPORTED');
      const { port1 } = new MessageChannel();
      expect(codeOf(() => port1.postMessage(heap))).toBe('ERR_HEAPLAB_UNSUPPORTED');
      port1.close();
      heap.destroy();
    }
  });
});
