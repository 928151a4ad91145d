// Property tests (fast-check) over the JS API: random sequences of alloc / free /
// realloc with sizes and alignments at the edges, over every allocator (and each
// under debug mode). After every sequence: check() is clean, every live block
// still holds what was written into it, and the counters add up.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap } from '../lib/index.js';
import { patternByte } from './util.js';

const edgeSize = fc.constantFrom(0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 4095, 4096, 4097, 65535, 65536, 65537, 262144, 1 << 20);
const size = fc.oneof(
  { arbitrary: edgeSize, weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 512 }), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 300_000 }), weight: 1 },
);
const align = fc.constantFrom(1, 2, 4, 8, 16, 32, 64, 128, 4096, 8192, 65536, 1 << 20);

type Op =
  | { op: 'alloc'; size: number; align: number; zero: boolean }
  | { op: 'free'; pick: number }
  | { op: 'realloc'; pick: number; size: number }
  | { op: 'check' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('alloc' as const), size, align, zero: fc.boolean() }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('free' as const), pick: fc.nat() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('realloc' as const), pick: fc.nat(), size }), weight: 3 },
  { arbitrary: fc.constant({ op: 'check' as const }), weight: 1 },
);

interface Live {
  buf: Buffer;
  tag: number;
}

function fill(b: Buffer, tag: number): void {
  for (let i = 0; i < b.length; i++) b[i] = patternByte(tag, i);
}
function intact(b: Buffer, tag: number, n = b.length): boolean {
  for (let i = 0; i < n; i++) if (b[i] !== patternByte(tag, i)) return false;
  return true;
}

describe.each(allocatorKinds.flatMap((k) => [[k, false], [k, true]] as const))('%s heap (debug: %s) properties', (kind, debug) => {
  it('keeps contents, sizes and soundness over random sequences', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const heap = createHeap(kind, debug ? { debug: true } : {});
        try {
          const live: Live[] = [];
          let tag = 1;
          let bytes = 0;
          for (const o of ops) {
            if (o.op === 'alloc') {
              const buf = heap.alloc(o.size, { align: o.align, zero: o.zero });
              expect(buf.length).toBe(o.size);
              expect(heap.usableSize(buf)).toBeGreaterThanOrEqual(o.size);
              if (o.zero) expect(buf.every((x) => x === 0)).toBe(true);
              fill(buf, tag);
              live.push({ buf, tag: tag++ });
              bytes += o.size;
            } else if (o.op === 'free' && live.length) {
              const [victim] = live.splice(o.pick % live.length, 1);
              const n = victim!.buf.length;
              expect(intact(victim!.buf, victim!.tag)).toBe(true);
              heap.free(victim!.buf);
              expect(victim!.buf.length).toBe(0);
              bytes -= n;
            } else if (o.op === 'realloc' && live.length) {
              const entry = live[o.pick % live.length]!;
              const old = entry.buf;
              const oldSize = old.length;
              const moved = heap.realloc(old, o.size);
              expect(old.length).toBe(0);
              expect(moved.length).toBe(o.size);
              expect(intact(moved, entry.tag, Math.min(oldSize, o.size))).toBe(true);
              fill(moved, entry.tag);
              entry.buf = moved;
              bytes += o.size - oldSize;
            } else if (o.op === 'check') {
              heap.check();
            }
          }
          heap.check();
          for (const l of live) expect(intact(l.buf, l.tag)).toBe(true);
          expect(heap.stats()).toMatchObject({ blocksInUse: live.length, bytesInUse: bytes });
          for (const l of live) heap.free(l.buf);
          heap.check();
          expect(heap.stats().blocksInUse).toBe(0);
        } finally {
          heap.destroy();
        }
      }),
      { numRuns: 60, seed: 0x5eed + kind.length + (debug ? 1 : 0) },
    );
  });
});

