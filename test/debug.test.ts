// Debug mode (createHeap(kind, { debug: true })): a deliberate overflow and a
// deliberate use after free, done the way buggy native code would (debugInternals
// writes where JS cannot), are pinpointed by block size and requester.
import { afterEach, describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap, type Heap, HeapCorruptionError, HeaplabError } from '../lib/index.js';
import { debugInternals } from '../lib/heap/heap.js';

function corruption(fn: () => unknown): HeapCorruptionError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HeapCorruptionError);
    return e as HeapCorruptionError;
  }
  throw new Error('expected ERR_HEAPLAB_CORRUPT, nothing was thrown');
}

function parse(heap: Heap): Buffer {
  return heap.alloc(48);
}

describe.each(allocatorKinds)('%s heap in debug mode', (kind) => {
  const heaps: Heap[] = [];
  const open = (debug: Parameters<typeof createHeap>[1] = { debug: true }): Heap => {
    const h = createHeap(kind, debug);
    heaps.push(h);
    return h;
  };
  afterEach(() => {
    for (const h of heaps.splice(0)) if (!h.destroyed) h.destroy();
  });

  it('pinpoints an overflow at free by size and the requesting frame', () => {
    const h = open();
    const buf = parse(h);
    buf.fill(1);
    const bug = debugInternals(h);
    bug.poke(bug.address(buf) + 48, 0x41); // one byte past the end
    const e = corruption(() => h.free(buf));
    expect(e.code).toBe('ERR_HEAPLAB_CORRUPT');
    expect(e.findings).toHaveLength(1);
    expect(e.findings[0]).toMatchObject({ kind: 'overflow', size: 48, offset: 0 });
    expect(e.findings[0]!.requester).toMatch(/^parse\(\) at test\/debug\.test\.ts:\d+$/);
    expect(e.message).toMatch(/a 48-byte block requested by parse\(\) at test\/debug\.test\.ts:\d+ was written past its end/);
    expect(buf.length).toBe(0); // the block was still freed
    h.check(); // told once: the heap is sound again
  });

  it('pinpoints a use after free at check by size and label', () => {
    const h = open();
    const buf = h.alloc(100, { label: 'tokenizer' });
    const bug = debugInternals(h);
    const at = bug.address(buf);
    h.free(buf);
    bug.poke(at + 5, 0); // the freed block waits in the quarantine
    const e = corruption(() => h.check());
    expect(e.findings[0]).toMatchObject({ kind: 'use-after-free', size: 100, requester: 'tokenizer', offset: 5 });
    expect(e.problems).toContain('a 100-byte block requested by tokenizer was written after it was freed (at byte 5)');
    h.check();
  });

  it('finds a use after free when the block leaves the quarantine, at the next free', () => {
    const h = open({ debug: { quarantine: 2 } });
    const buf = h.alloc(64, { label: 'victim' });
    const bug = debugInternals(h);
    const at = bug.address(buf);
    h.free(buf);
    bug.poke(at + 63, 7);
    h.free(h.alloc(8)); // still in quarantine: nothing to say yet
    const e = corruption(() => h.free(h.alloc(8))); // pushes 'victim' out
    expect(e.findings.map((f) => [f.kind, f.size, f.requester, f.offset])).toEqual([['use-after-free', 64, 'victim', 63]]);
  });

  it('sees a smashed header, and checkEvery finds an overflow without check()', () => {
    const h = open({ debug: { checkEvery: 4 } });
    const buf = h.alloc(32, { label: 'under' });
    const bug = debugInternals(h);
    bug.poke(bug.address(buf) - 1, 0);
    const over = h.alloc(16, { label: 'over' });
    bug.poke(bug.address(over) + 16 + 3, 0);
    for (let i = 0; i < 8; i++) h.alloc(8);
    const e = corruption(() => h.free(h.alloc(1)));
    const kinds = e.findings.map((f) => `${f.kind}:${f.size}:${f.requester}`).sort();
    expect(kinds).toEqual(['bad-magic:32:under', 'overflow:16:over']);
    expect(e.problems.join('\n')).toMatch(/a 32-byte block requested by under had its header overwritten/);
  });

  it('fills fresh memory with 0xAA, keeps realloc contents, and reports a clean heap as clean', () => {
    const h = open();
    const a = h.alloc(1000);
    expect(a.every((x) => x === 0xaa)).toBe(true);
    a.fill(3, 0, 10);
    const b = h.realloc(a, 5000, { label: 'grow' });
    expect([...b.subarray(0, 10)]).toEqual(Array(10).fill(3));
    expect(b.subarray(1000).every((x) => x === 0xaa)).toBe(true);
    expect(h.alloc(64, { zero: true }).every((x) => x === 0)).toBe(true);
    expect(h.usableSize(b)).toBe(5000);
    const aligned = h.alloc(10, { align: 4096 });
    expect(debugInternals(h).address(aligned) % 4096).toBe(0);
    h.free(b);
    h.check();
  });

  it('validates its options and keeps debug hooks to debug heaps', () => {
    for (const debug of [1, 'yes', { quarantine: -1 }, { checkEvery: 1.5 }, { colour: 1 }]) {
      expect(() => createHeap(kind, { debug } as never)).toThrow(expect.objectContaining({ code: 'ERR_HEAPLAB_INVALID_ARGUMENT' }));
    }
    expect(() => createHeap(kind, { debug: true, engine: 'ts' } as never)).toThrow(expect.objectContaining({ code: 'ERR_HEAPLAB_INVALID_ARGUMENT' }));
    const plain = open({});
    const b = plain.alloc(8, { label: 'ignored' });
    expect(() => debugInternals(plain).address(b)).toThrow(HeaplabError);
    const h = open();
    expect(() => h.alloc(8, { label: 42 as never })).toThrow(expect.objectContaining({ code: 'ERR_HEAPLAB_INVALID_ARGUMENT' }));
    // poke refuses addresses that are no block of the debug layer
    expect(() => debugInternals(h).poke(4096, 1)).toThrow(HeaplabError);
  });
});
