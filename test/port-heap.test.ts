// The TypeScript ports behind the Heap interface: createHeap(kind, { engine: 'ts' }).
import { describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap } from '../lib/index.js';
import { ArenaPages } from '../lib/pages/arena.js';
import { portFactories } from '../lib/ports/index.js';
import { codeOf, mulberry32 } from './util.js';

describe.each(allocatorKinds)('%s port heap', (kind) => {
  it('allocates views over its address space, with the API and errors of a native heap', () => {
    const h = createHeap(kind, { engine: 'ts' });
    const a = h.alloc(100);
    expect(a).toBeInstanceOf(Uint8Array);
    expect(a.length).toBe(100);
    expect(h.offsetOf(a) % 16).toBe(0);
    a.fill(9);
    const b = h.alloc(5000, { align: 4096, zero: true });
    expect(h.offsetOf(b) % 4096).toBe(0);
    expect(b.every((x) => x === 0)).toBe(true);
    const c = h.realloc(a, 20_000);
    expect(c.subarray(0, 100).every((x) => x === 9)).toBe(true);
    expect(h.usableSize(c)).toBeGreaterThanOrEqual(20_000);
    expect(codeOf(() => h.free(a))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(codeOf(() => h.free(c.subarray(1)))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER');
    expect(codeOf(() => h.alloc(-1))).toBe('ERR_HEAPLAB_INVALID_SIZE');
    expect(codeOf(() => h.alloc(8, { align: 3 }))).toBe('ERR_HEAPLAB_INVALID_ALIGNMENT');
    expect(codeOf(() => h.alloc(2 ** 40))).toBe('ERR_HEAPLAB_OUT_OF_MEMORY');
    expect(h.stats()).toMatchObject({ blocksInUse: 2, bytesInUse: 25_000, allocs: 2, reallocs: 1, failedAllocs: 1 });
    h.check();
    h.free(b);
    h.free(c);
    h.check();
    h.destroy();
    expect(h.stats().bytesMapped).toBe(0);
    expect(codeOf(() => h.alloc(1))).toBe('ERR_HEAPLAB_DESTROYED');
  });

  it('maps the same pages as the C heap on the arena source, step by step', () => {
    const native = createHeap(kind, { pages: 'arena' });
    const port = createHeap(kind, { engine: 'ts' });
    const r = mulberry32(7);
    const live: Array<[Buffer, Uint8Array]> = [];
    for (let i = 0; i < 3000; i++) {
      if (live.length && r() < 0.45) {
        const [n, p] = live.splice(Math.floor(r() * live.length), 1)[0]!;
        native.free(n);
        port.free(p);
      } else {
        const size = Math.floor(Math.exp(r() * Math.log(300_000)));
        live.push([native.alloc(size), port.alloc(size)]);
      }
      if (i % 250 === 0) {
        const a = native.stats();
        const b = port.stats();
        expect(b.bytesMapped, `step ${i}`).toBe(a.bytesMapped);
        expect(b.peakBytesMapped, `step ${i}`).toBe(a.peakBytesMapped);
        expect(b.pageMaps, `step ${i}`).toBe(a.pageMaps);
      }
    }
    native.check();
    port.check();
    native.destroy();
    port.destroy();
  });

  it('refuses, as its C does, a realloc or free of a block that is free already', () => {
    // what a stale pointer in a program does to the design itself (the Heap API stops it
    // before: ERR_HEAPLAB_DOUBLE_FREE): the heap is untouched and the block comes back once
    const pages = new ArenaPages(4096, 1 << 26, 0);
    const heap = portFactories[kind]!(pages)!;
    const left = heap.malloc(200), gone = heap.malloc(200), right = heap.malloc(200);
    heap.free(gone);
    expect(heap.realloc(gone, 100)).toBe(0);
    expect(heap.realloc(gone, 5000)).toBe(0);
    heap.free(gone);
    expect(heap.check()).toBe(0);
    const again = heap.malloc(200), other = heap.malloc(200);
    expect([again === gone, other === gone]).toEqual([true, false]);
    for (const p of [left, right, again, other]) heap.free(p);
    expect(heap.check()).toBe(0);
    heap.destroy();
    pages.release();
  });
});

describe('the arena page source (the ports’ side of native/pages/arena.c)', () => {
  /** The rule on a page-by-page model: the first n pages of the lowest maximal free interval that holds n. */
  function modelAlloc(free: boolean[], n: number): number {
    for (let first = 1; first < free.length; ) {
      if (!free[first]) { first++; continue; }
      let end = first;
      while (end < free.length && free[end]) end++;
      if (end - first >= n) {
        for (let p = first; p < first + n; p++) free[p] = false;
        return first;
      }
      first = end;
    }
    return 0;
  }

  it('hands out the pages the rule names through hundreds of free runs, and zeroes a reused run', () => {
    const pageSize = 4096;
    const total = 4096;
    const pages = new ArenaPages(pageSize, total * pageSize, 0);
    const free = Array.from({ length: total }, (_, p) => p > 0);
    const r = mulberry32(7);
    const live: Array<[number, number]> = [];
    for (let step = 0; step < 6000; step++) {
      // grow to about 600 live runs, then churn: far more free runs than the arrays start with
      if (live.length < 600 && r() < 0.7) {
        const n = 1 + Math.floor(r() * (r() < 0.9 ? 3 : 40));
        const at = pages.allocPage(n);
        expect(at / pageSize).toBe(modelAlloc(free, n));
        if (at) {
          expect(pages.u8[at]).toBe(0);
          expect(pages.u8[at + n * pageSize - 1]).toBe(0);
          pages.u8[at] = 1; // dirty it: a later run over this page must read zero again
          pages.u8[at + n * pageSize - 1] = 1;
          live.push([at, n]);
        }
      } else if (live.length) {
        const [at, n] = live.splice(Math.floor(r() * live.length), 1)[0]!;
        pages.freePage(at, n);
        for (let p = at / pageSize; p < at / pageSize + n; p++) free[p] = true;
      }
      expect(pages.bytesMapped).toBe(live.reduce((s, [, n]) => s + n * pageSize, 0));
    }
    for (const [at, n] of live) pages.freePage(at, n);
    expect(pages.bytesMapped).toBe(0);
    // everything merged back into one run: the whole space less page 0 in one piece
    expect(pages.allocPage(total - 1)).toBe(pageSize);
    expect(pages.allocPage(1)).toBe(0);
    pages.release();
  });
});
