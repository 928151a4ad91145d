// createUnsafeHeap: the fast path. Its views are not detached on free (that is
// its trade-off), but nothing a caller hands it reaches the allocator unless it
// is a live block's own start: every bad free is a coded error and check() stays clean.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { allocatorKinds, createUnsafeHeap } from '../lib/index.js';
import { codeOf, mulberry32, patternByte } from './util.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe.each(allocatorKinds)('%s unsafe heap', (kind) => {
  it('hands out views over one region, keeps their bytes apart, counts and frees them', () => {
    const heap = createUnsafeHeap(kind, { limit: 64 << 20 });
    const views = [];
    for (let id = 0; id < 200; id++) {
      const v = heap.alloc(1 + ((id * 97) % 3000));
      expect(v.buffer).toBe(heap.region);
      expect(v.byteOffset % 16).toBe(0);
      expect(heap.offsetOf(v)).toBe(v.byteOffset);
      expect(heap.usableSize(v)).toBeGreaterThanOrEqual(v.length);
      for (let i = 0; i < v.length; i++) v[i] = patternByte(id, i);
      views.push(v);
    }
    views.forEach((v, id) => expect(v.every((x, i) => x === patternByte(id, i))).toBe(true));
    const s = heap.stats();
    expect(s.blocksInUse).toBe(200);
    expect(s.bytesInUse).toBe(views.reduce((n, v) => n + v.length, 0));
    for (const v of views) heap.free(v);
    expect(heap.stats()).toMatchObject({ blocksInUse: 0, bytesInUse: 0, allocs: 200, frees: 200 });
    heap.check();
    heap.destroy();
  });

  it('hands reused pages out uncleared, but { zero: true } is zero however dirty the memory was', () => {
    const heap = createUnsafeHeap(kind, { limit: 64 << 20 });
    for (const size of [1 << 20, 3 << 20, 40, 5000]) {
      const dirty = heap.alloc(size).fill(0xab);
      heap.free(dirty);
      const again = heap.alloc(size, { zero: true });
      expect(again.every((x) => x === 0)).toBe(true);
      const aligned = heap.alloc(size, { zero: true, align: 4096 });
      expect(aligned.every((x) => x === 0)).toBe(true);
      again.fill(0xcd);
      aligned.fill(0xcd);
      heap.free(again);
      heap.free(aligned);
    }
    // the point of the trade: a big block's pages are not cleared on reuse
    const big = heap.alloc(1 << 20).fill(7);
    const at = heap.offsetOf(big);
    heap.free(big);
    const reused = heap.alloc(1 << 20);
    expect(heap.offsetOf(reused)).toBe(at); // the arena is deterministic: the same run again
    expect(reused[reused.length >> 1]).toBe(7);
    heap.free(reused);
    heap.check();
    heap.destroy();
  });

  it('refuses every free that is not a live block start, with a code, and the heap stays whole', () => {
    const heap = createUnsafeHeap(kind, { limit: 16 << 20 });
    const other = createUnsafeHeap(kind, { limit: 16 << 20 });
    const a = heap.alloc(256).fill(1);
    const b = heap.alloc(256).fill(2);
    const theirs = other.alloc(256);
    expect(codeOf(() => heap.free(a.subarray(16)))).toBe('ERR_HEAPLAB_DOUBLE_FREE'); // an interior view starts no block
    expect(codeOf(() => heap.free(new Uint8Array(heap.region, a.byteOffset + 8, 8)))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(codeOf(() => heap.free(new Uint8Array(heap.region, a.byteOffset, 1 << 20)))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER'); // longer than its block
    expect(codeOf(() => heap.free(theirs))).toBe('ERR_HEAPLAB_DOUBLE_FREE'); // another heap's region
    expect(codeOf(() => heap.free(Buffer.alloc(256)))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(codeOf(() => heap.free(new Uint16Array(4) as unknown as Uint8Array))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER');
    for (const junk of [undefined, null, 42, 'x', {}, a.buffer]) {
      expect(codeOf(() => heap.free(junk as unknown as Uint8Array))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER');
    }
    heap.free(a);
    expect(codeOf(() => heap.free(a))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(codeOf(() => heap.realloc(a, 10))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(codeOf(() => heap.usableSize(a))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(codeOf(() => heap.offsetOf(a))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(b.every((x) => x === 2)).toBe(true);
    heap.check();
    expect(heap.stats()).toMatchObject({ blocksInUse: 1 });
    heap.free(b);
    other.free(theirs);
    heap.check();
    other.check();
    heap.destroy();
    other.destroy();
  });

  it('validates sizes, alignments and options like createHeap', () => {
    const heap = createUnsafeHeap(kind, { limit: 4 << 20 });
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, '8', undefined]) {
      expect(codeOf(() => heap.alloc(bad as number))).toBe('ERR_HEAPLAB_INVALID_SIZE');
    }
    expect(codeOf(() => heap.alloc(8, { align: 3 }))).toBe('ERR_HEAPLAB_INVALID_ALIGNMENT');
    expect(codeOf(() => heap.alloc(8, { bogus: 1 } as never))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    expect(codeOf(() => heap.alloc(8 << 20))).toBe('ERR_HEAPLAB_OUT_OF_MEMORY');
    expect(codeOf(() => createUnsafeHeap('nope' as never))).toBe('ERR_HEAPLAB_UNKNOWN_ALLOCATOR');
    const aligned = heap.alloc(100, { align: 4096, zero: true });
    expect(aligned.byteOffset % 4096).toBe(0);
    expect(aligned.every((x) => x === 0)).toBe(true);
    heap.free(aligned);
    expect(heap.stats()).toMatchObject({ blocksInUse: 0, failedAllocs: 1 });
    heap.check();
    heap.destroy();
  });

  it('realloc keeps the contents; a failed realloc keeps the old view', () => {
    const heap = createUnsafeHeap(kind, { limit: 8 << 20 });
    let v = heap.alloc(100);
    for (let i = 0; i < 100; i++) v[i] = i;
    v = heap.realloc(v, 100_000);
    expect(v.length).toBe(100_000);
    expect(v.subarray(0, 100).every((x, i) => x === i)).toBe(true);
    expect(codeOf(() => heap.realloc(v, 64 << 20))).toBe('ERR_HEAPLAB_OUT_OF_MEMORY');
    expect(v.subarray(0, 100).every((x, i) => x === i)).toBe(true);
    v = heap.realloc(v, 10);
    expect(v.every((x, i) => x === i)).toBe(true);
    heap.free(v);
    heap.check();
    heap.destroy();
  });

  it('destroy() detaches the region: views read as empty, and every call says destroyed', () => {
    const heap = createUnsafeHeap(kind);
    const v = heap.alloc(64).fill(5);
    heap.destroy();
    expect(heap.region.byteLength).toBe(0);
    expect(v.length).toBe(0);
    expect(codeOf(() => heap.alloc(8))).toBe('ERR_HEAPLAB_DESTROYED');
    expect(codeOf(() => heap.free(v))).toBe('ERR_HEAPLAB_DESTROYED');
    expect(codeOf(() => heap.destroy())).toBe('ERR_HEAPLAB_DESTROYED');
  });

  it('a transfer list naming the region copies it, and the heap itself cannot be posted', () => {
    const heap = createUnsafeHeap(kind, { limit: 1 << 20 });
    const v = heap.alloc(32).fill(6);
    const copy = structuredClone(v, { transfer: [v.buffer as ArrayBuffer] });
    expect(copy[31]).toBe(6);
    expect(heap.region.byteLength).toBeGreaterThan(0);
    expect(v.every((x) => x === 6)).toBe(true);
    expect(codeOf(() => structuredClone(heap))).toBe('ERR_HEAPLAB_UNSUPPORTED');
    heap.free(v);
    heap.check();
    heap.destroy();
  });

  it('a view outlives a heap object that was dropped: the region keeps its memory mapped', () => {
    let view: Uint8Array | undefined;
    (() => {
      const heap = createUnsafeHeap(kind, { limit: 4 << 20 });
      view = heap.alloc(4096).fill(7);
    })();
    for (let i = 0; i < 3; i++) gc();
    expect(view!.every((x) => x === 7)).toBe(true);
    view!.fill(8);
    expect(view![4095]).toBe(8);
  });

  it('survives a random mix of good and bad calls', () => {
    const heap = createUnsafeHeap(kind, { limit: 32 << 20 });
    const r = mulberry32(kind.length * 7919);
    const live: Uint8Array[] = [];
    const dead: Uint8Array[] = [];
    for (let n = 0; n < 5000; n++) {
      const x = r();
      if (x < 0.45 || live.length === 0) live.push(heap.alloc(Math.floor(r() * 5000)).fill(n & 0xff));
      else if (x < 0.8) {
        const v = live.splice(Math.floor(r() * live.length), 1)[0]!;
        heap.free(v);
        dead.push(v);
      } else if (x < 0.9 && dead.length) {
        const v = dead[Math.floor(r() * dead.length)]!;
        const code = codeOf(() => heap.free(v));
        // a freed view may start a block again (its memory was reused): then it frees
        // that one if it is no longer than it (the documented hazard), else it is refused
        if (code === undefined) live.splice(live.findIndex((l) => l.byteOffset === v.byteOffset), 1);
        else expect(code).toMatch(/ERR_HEAPLAB_(DOUBLE_FREE|FOREIGN_BUFFER)/);
      } else {
        const v = live[Math.floor(r() * live.length)]!;
        expect(codeOf(() => heap.free(v.subarray(1)))).toMatch(/ERR_HEAPLAB_(DOUBLE_FREE|FOREIGN_BUFFER)/);
      }
    }
    heap.check();
    for (const v of live) heap.free(v);
    expect(heap.stats().blocksInUse).toBe(0);
    heap.check();
    heap.destroy();
  });
});
