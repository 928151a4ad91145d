// Every bad input a user can send from JS, as one table: each must be answered by
// a typed HeaplabError with its code, and leave the heap sound (check() clean,
// live blocks intact), over every allocator, with and without debug mode.
import { afterEach, describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap, type Heap, HeaplabError } from '../lib/index.js';

interface Ctx {
  heap: Heap;
  /** a live block of `heap`, 64 bytes of 0x5a, that must survive every case */
  live: Buffer;
  other: Heap;
  dead: Heap;
  /** a block of `dead`, detached by its destroy */
  deadBlock: Buffer;
}

type Case = [name: string, call: (c: Ctx) => unknown, code: string];

function detachedView(): Uint8Array {
  const ab = new ArrayBuffer(16);
  const view = new Uint8Array(ab);
  structuredClone(ab, { transfer: [ab] }); // detaches ab
  return view;
}

const badSizes: [string, unknown][] = [
  ['NaN', NaN], ['-1', -1], ['1.5', 1.5], ['2**53', 2 ** 53], ['Infinity', Infinity], ['-Infinity', -Infinity],
  ['a string', '8'], ['a BigInt', 8n], ['null', null], ['undefined', undefined], ['an object', {}],
];
const badAligns: [string, unknown][] = [
  ['0', 0], ['3', 3], ['2**40', 2 ** 40], ['-16', -16], ['1.5', 1.5], ['NaN', NaN], ['a string', '16'], ['a BigInt', 16n],
];
const notBuffers: [string, unknown][] = [
  ['a number', 42], ['a string', 'x'], ['null', null], ['undefined', undefined], ['an object', {}], ['an array', [1, 2]],
  ['an ArrayBuffer', new ArrayBuffer(8)], ['a DataView', new DataView(new ArrayBuffer(8))], ['a plain Buffer', Buffer.alloc(8)],
];

const table: Case[] = [
  ...badSizes.map(([n, v]): Case => [`alloc size ${n}`, (c) => c.heap.alloc(v as number), 'ERR_HEAPLAB_INVALID_SIZE']),
  ...badSizes.map(([n, v]): Case => [`realloc size ${n}`, (c) => c.heap.realloc(c.live, v as number), 'ERR_HEAPLAB_INVALID_SIZE']),
  ...badAligns.map(([n, v]): Case => [`alignment ${n}`, (c) => c.heap.alloc(8, { align: v as number }), 'ERR_HEAPLAB_INVALID_ALIGNMENT']),
  ['options not an object', (c) => c.heap.alloc(8, 5 as never), 'ERR_HEAPLAB_INVALID_ARGUMENT'],
  ['an unknown option', (c) => c.heap.alloc(8, { colour: 1 } as never), 'ERR_HEAPLAB_INVALID_ARGUMENT'],
  ['zero not a boolean', (c) => c.heap.alloc(8, { zero: 1 as never }), 'ERR_HEAPLAB_INVALID_ARGUMENT'],
  ['label not a string', (c) => c.heap.alloc(8, { label: 7 as never }), 'ERR_HEAPLAB_INVALID_ARGUMENT'],
  ...notBuffers.map(([n, v]): Case => [`free of ${n}`, (c) => c.heap.free(v as Buffer), 'ERR_HEAPLAB_FOREIGN_BUFFER']),
  ...notBuffers.map(([n, v]): Case => [`realloc of ${n}`, (c) => c.heap.realloc(v as Buffer, 8), 'ERR_HEAPLAB_FOREIGN_BUFFER']),
  ...notBuffers.map(([n, v]): Case => [`usableSize of ${n}`, (c) => c.heap.usableSize(v as Buffer), 'ERR_HEAPLAB_FOREIGN_BUFFER']),
  ['free of a detached buffer', (c) => c.heap.free(detachedView() as Buffer), 'ERR_HEAPLAB_FOREIGN_BUFFER'],
  ['free of a subarray', (c) => c.heap.free(c.live.subarray(8)), 'ERR_HEAPLAB_FOREIGN_BUFFER'],
  ['free of a whole-length subarray', (c) => c.heap.free(c.live.subarray(0)), 'ERR_HEAPLAB_FOREIGN_BUFFER'],
  ['free of a view over the same memory', (c) => c.heap.free(new Uint8Array(c.live.buffer, c.live.byteOffset, c.live.length) as Buffer), 'ERR_HEAPLAB_FOREIGN_BUFFER'],
  ['free of a copy', (c) => c.heap.free(Buffer.from(c.live)), 'ERR_HEAPLAB_FOREIGN_BUFFER'],
  ["free of another heap's buffer", (c) => c.heap.free(c.other.alloc(64)), 'ERR_HEAPLAB_FOREIGN_BUFFER'],
  ["realloc of another heap's buffer", (c) => c.heap.realloc(c.other.alloc(64), 8), 'ERR_HEAPLAB_FOREIGN_BUFFER'],
  ["free of a destroyed heap's buffer", (c) => c.heap.free(c.deadBlock), 'ERR_HEAPLAB_FOREIGN_BUFFER'],
  ['free of a freed buffer (detached by the free)', (c) => { const b = c.heap.alloc(32); c.heap.free(b); c.heap.free(b); }, 'ERR_HEAPLAB_DOUBLE_FREE'],
  ['realloc of a freed buffer', (c) => { const b = c.heap.alloc(32); c.heap.free(b); c.heap.realloc(b, 64); }, 'ERR_HEAPLAB_DOUBLE_FREE'],
  ['realloc of a reallocated (old) buffer', (c) => {
    const b = c.heap.alloc(32);
    const moved = c.heap.realloc(b, 64);
    try {
      c.heap.realloc(b, 8);
    } finally {
      c.heap.free(moved);
    }
  }, 'ERR_HEAPLAB_DOUBLE_FREE'],
  ['usableSize of a freed buffer', (c) => { const b = c.heap.alloc(32); c.heap.free(b); c.heap.usableSize(b); }, 'ERR_HEAPLAB_DOUBLE_FREE'],
  ['alloc after destroy', (c) => c.dead.alloc(8), 'ERR_HEAPLAB_DESTROYED'],
  ['alloc of a bad size after destroy', (c) => c.dead.alloc(NaN), 'ERR_HEAPLAB_DESTROYED'],
  ['free after destroy', (c) => c.dead.free(c.deadBlock), 'ERR_HEAPLAB_DESTROYED'],
  ['realloc after destroy', (c) => c.dead.realloc(c.deadBlock, 8), 'ERR_HEAPLAB_DESTROYED'],
  ['usableSize after destroy', (c) => c.dead.usableSize(c.deadBlock), 'ERR_HEAPLAB_DESTROYED'],
  ['check after destroy', (c) => c.dead.check(), 'ERR_HEAPLAB_DESTROYED'],
  ['destroy after destroy', (c) => c.dead.destroy(), 'ERR_HEAPLAB_DESTROYED'],
  ['createHeap of an unknown kind', () => createHeap('ptmalloc' as never), 'ERR_HEAPLAB_UNKNOWN_ALLOCATOR'],
  ['createHeap with a bad limit', () => createHeap('tlsf', { limit: -1 }), 'ERR_HEAPLAB_INVALID_ARGUMENT'],
  ['createHeap with a bad page size', () => createHeap('tlsf', { pageSize: 3000 }), 'ERR_HEAPLAB_INVALID_ARGUMENT'],
];

describe.each(allocatorKinds.flatMap((k) => [[k, false], [k, true]] as const))('%s heap (debug: %s) answers hostile input', (kind, debug) => {
  const opened: Heap[] = [];
  const open = (): Heap => {
    const h = createHeap(kind, debug ? { debug: true } : {});
    opened.push(h);
    return h;
  };
  afterEach(() => {
    for (const h of opened.splice(0)) if (!h.destroyed) h.destroy();
  });

  it.each(table)('%s', (_name, call, code) => {
    const heap = open();
    const other = open();
    const dead = open();
    const deadBlock = dead.alloc(32);
    dead.destroy();
    const live = heap.alloc(64).fill(0x5a);
    const before = heap.stats();
    let thrown: unknown;
    try {
      call({ heap, live, other, dead, deadBlock });
    } catch (e) {
      thrown = e;
    }
    expect(thrown, 'a typed error').toBeInstanceOf(HeaplabError);
    expect((thrown as HeaplabError).code).toBe(code);
    expect((thrown as HeaplabError).message.length).toBeGreaterThan(10);
    // the heap is unharmed
    heap.check();
    other.check();
    expect(live.length).toBe(64);
    expect(live.every((x) => x === 0x5a)).toBe(true);
    expect(heap.usableSize(live)).toBeGreaterThanOrEqual(64);
    expect(heap.stats().failedAllocs).toBe(before.failedAllocs);
    // and it still works
    const fresh = heap.realloc(heap.alloc(10).fill(1), 100);
    expect(fresh.subarray(0, 10).every((x) => x === 1)).toBe(true);
    heap.free(fresh);
    heap.free(live);
    heap.check();
    expect(heap.stats().blocksInUse).toBe(0);
    // stats() keeps answering after destroy, with the last values
    expect(dead.stats().bytesMapped).toBe(0);
  });
});
