// heap.walk(): every piece of memory a heap holds, block by block. A walk must
// account for every byte the page source handed out, list each live block once
// with its request inside its usable bytes, and agree with stats().
import { describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap, createUnsafeHeap, WalkState, type Heap, type HeapWalk } from '../lib/index.js';
import { mulberry32 } from './util.js';

type Engine = 'native' | 'ts';
const open = (kind: (typeof allocatorKinds)[number], engine: Engine): Heap<Uint8Array> =>
  engine === 'ts' ? createHeap(kind, { engine: 'ts', pages: 'arena' }) : createHeap(kind, { pages: 'arena' });

/** Pieces of one region follow each other without gap or overlap; regions do not overlap. */
function expectTiled(w: HeapWalk): void {
  const spans: Array<[number, number]> = [];
  for (let i = 0; i < w.start.length; i++) {
    expect(w.size[i]).toBeGreaterThan(0);
    if (i > 0 && w.region[i] === w.region[i - 1] && w.region[i] !== 0) expect(w.start[i]).toBe(w.start[i - 1]! + w.size[i - 1]!);
    spans.push([w.start[i]!, w.start[i]! + w.size[i]!]);
    if (w.state[i] !== WalkState.meta) {
      expect(w.payload[i]).toBeGreaterThanOrEqual(w.start[i]!);
      expect(w.payload[i]! + w.usable[i]!).toBeLessThanOrEqual(w.start[i]! + w.size[i]! + 8); // dlmalloc: the next chunk's prev_foot
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
}

describe.each(allocatorKinds.flatMap((k) => (['native', 'ts'] as const).map((e) => [k, e] as const)))('%s (%s) walk', (kind, engine) => {
  it('accounts for every mapped byte, and each live block once, block by block', () => {
    const heap = open(kind, engine);
    const r = mulberry32(kind.length * 31 + engine.length);
    const live: Uint8Array[] = [];
    for (let n = 0; n < 3000; n++) {
      if (live.length && r() < 0.45) heap.free(live.splice(Math.floor(r() * live.length), 1)[0]!);
      else if (live.length && r() < 0.1) {
        const i = Math.floor(r() * live.length);
        live[i] = heap.realloc(live[i]!, Math.floor(r() * 20_000));
      } else live.push(heap.alloc(Math.floor(2 ** (r() * 16)), r() < 0.05 ? { align: 256 } : undefined));
      if (n % 1000 !== 999) continue;
      const w = heap.walk();
      const s = heap.stats();
      expectTiled(w);
      // every byte the page source handed out is in exactly one piece
      expect(w.figures.heldBytes).toBe(s.bytesMapped);
      // each live block is one used piece, its request inside its usable bytes
      let known = 0;
      let asked = 0;
      for (let i = 0; i < w.start.length; i++) {
        const req = w.requested[i]!;
        if (Number.isNaN(req)) continue;
        expect(w.state[i]).toBe(WalkState.used);
        expect(req).toBeLessThanOrEqual(w.usable[i]!);
        known++;
        asked += req;
      }
      expect(known).toBe(s.blocksInUse);
      expect(asked).toBe(s.bytesInUse);
      expect(w.figures.usedBlocks).toBe(s.blocksInUse);
      // used bytes = what was asked + the design's headers + rounding slack
      const f = w.figures;
      expect(f.usedBytes).toBe(s.bytesInUse + f.headerBytes + f.slackBytes!);
      expect(f.slackBytes).toBeGreaterThanOrEqual(0);
      expect(f.usedBytes + f.freeBytes + f.metaBytes).toBe(f.heldBytes);
      expect(f.largestFree).toBeLessThanOrEqual(f.freeBytes);
      expect(f.fragmentation).toBeGreaterThanOrEqual(0);
      expect(f.fragmentation).toBeLessThan(1);
    }
    for (const b of live) heap.free(b);
    const empty = heap.walk();
    expect(empty.figures.usedBlocks).toBe(0);
    expect(empty.figures.heldBytes).toBe(heap.stats().bytesMapped);
    heap.destroy();
  });
});

describe('walks of the other heaps', () => {
  it.each(allocatorKinds)('%s on mmap (addresses), with the thread cache, and unsafe', (kind) => {
    for (const heap of [createHeap(kind), createHeap(kind, { cache: true })]) {
      const kept = Array.from({ length: 50 }, (_, i) => heap.alloc(100 + i * 37));
      const w = heap.walk();
      expect(w.base).toBe(0);
      expectTiled(w);
      let known = 0;
      for (let i = 0; i < w.start.length; i++) if (!Number.isNaN(w.requested[i]!)) known++;
      expect(known).toBe(50);
      for (const b of kept) heap.free(b);
      heap.destroy();
    }
    const unsafe = createUnsafeHeap(kind, { limit: 8 << 20 });
    const v = unsafe.alloc(1000);
    const w = unsafe.walk();
    expectTiled(w);
    const i = [...w.payload].indexOf(v.byteOffset);
    expect(w.state[i]).toBe(WalkState.used);
    expect(w.usable[i]).toBeGreaterThanOrEqual(1000);
    unsafe.free(v);
    unsafe.destroy();
  });
});
