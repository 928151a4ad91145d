// A seeded randomized run of 100,000 operations per allocator against a shadow
// model: contents verified, no overlap, alignment, stats equal to the model's.
import { describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap } from '../lib/index.js';
import { mulberry32, patternByte } from './util.js';

interface Live {
  buf: Buffer;
  id: number;
  size: number;
  align: number;
}

// Block contents: a window into one long pattern, starting at an offset that
// depends on the block's id (251 is prime, so neighbouring ids differ). Filling
// and verifying are native copies and compares: the test spends its time in the
// allocator, not in JS byte loops.
const PERIOD = 251;
const pattern = Buffer.alloc(400_000 + PERIOD);
for (let i = 0; i < pattern.length; i++) pattern[i] = patternByte(0, i % PERIOD);
const start = (id: number): number => (id * 97) % PERIOD;

function fill(buf: Buffer, id: number): void {
  pattern.copy(buf, 0, start(id), start(id) + buf.length);
}
function intact(buf: Buffer, id: number, n = buf.length): boolean {
  return buf.compare(pattern, start(id), start(id) + n, 0, n) === 0;
}

describe.each(allocatorKinds)('%s against a shadow model', (kind) => {
  it('survives 100,000 seeded operations with contents, alignment and stats exact', () => {
    const rand = mulberry32(0xc0ffee);
    const heap = createHeap(kind);
    const slots: (Live | undefined)[] = new Array(1500).fill(undefined);
    let nextId = 1;
    let bytesInUse = 0;
    let blocksInUse = 0;
    let allocs = 0;
    let frees = 0;
    let reallocs = 0;
    const randomSize = (): number => {
      const r = rand();
      if (r < 0.02) return Math.floor(rand() * 300_000);
      if (r < 0.2) return Math.floor(rand() * 8192);
      return Math.floor(rand() * 300);
    };
    for (let op = 0; op < 100_000; op++) {
      const slot = Math.floor(rand() * slots.length);
      const live = slots[slot];
      const dice = rand();
      if (live && dice < 0.45) {
        if (!intact(live.buf, live.id)) expect.fail(`op ${op}: block #${live.id} lost its contents before free`);
        heap.free(live.buf);
        if (live.buf.length !== 0) expect.fail(`op ${op}: a freed Buffer is still attached`);
        slots[slot] = undefined;
        bytesInUse -= live.size;
        blocksInUse--;
        frees++;
      } else if (live) {
        const size = randomSize();
        const id = nextId++;
        const buf = heap.realloc(live.buf, size);
        if (!intact(buf, live.id, Math.min(size, live.size))) expect.fail(`op ${op}: realloc of #${live.id} lost its contents`);
        fill(buf, id);
        slots[slot] = { buf, id, size, align: live.align };
        bytesInUse += size - live.size;
        reallocs++;
      } else {
        const size = randomSize();
        const align = dice > 0.9 ? 2 ** (4 + Math.floor(rand() * 9)) : 16;
        const id = nextId++;
        const buf = heap.alloc(size, { align });
        if (buf.length !== size) expect.fail(`op ${op}: alloc(${size}) gave ${buf.length} bytes`);
        fill(buf, id);
        slots[slot] = { buf, id, size, align };
        bytesInUse += size;
        blocksInUse++;
        allocs++;
      }
      if (op % 2500 === 0) {
        // check() walks the allocator and verifies each live block's size and alignment
        heap.check();
        expect(heap.stats()).toMatchObject({ bytesInUse, blocksInUse, allocs, frees, reallocs });
        // no two live blocks overlap: a write to one never shows up in another
        for (const l of slots) if (l) expect(intact(l.buf, l.id)).toBe(true);
      }
    }
    heap.check();
    expect(heap.stats()).toMatchObject({ bytesInUse, blocksInUse, allocs, frees, reallocs, failedAllocs: 0 });
    const s = heap.stats();
    expect(s.peakBytesMapped).toBeGreaterThanOrEqual(s.peakBytesInUse);
    for (const l of slots) if (l) heap.free(l.buf);
    heap.check();
    expect(heap.stats().bytesInUse).toBe(0);
    heap.destroy();
    expect(heap.stats().bytesMapped).toBe(0);
  });
});
