// Every size from 0 to 2**53, on every allocator and engine: each request either
// works or throws ERR_HEAPLAB_INVALID_SIZE / ERR_HEAPLAB_OUT_OF_MEMORY, and the
// heap is whole afterwards (check() clean, other blocks intact, nothing freed twice).
import { constants as bufferConstants } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap, type AllocatorKind, type Heap } from '../lib/index.js';
import { binding } from '../lib/addon/native.js';
import { Status } from '../lib/errors.js';
import { codeOf } from './util.js';

const MAX = bufferConstants.MAX_LENGTH;
const edges = [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, MAX - 1, MAX, MAX + 1, 2 ** 40, 2 ** 53 - 1];
const sizes = [...new Set(edges)].sort((a, b) => a - b);
const allowed = ['ERR_HEAPLAB_INVALID_SIZE', 'ERR_HEAPLAB_OUT_OF_MEMORY'];

describe.each(['native', 'ts'] as const)('%s engine: sizes around 2**31, 2**32, MAX_LENGTH and 2**53', (engine) => {
  const open = (kind: AllocatorKind): Heap<Uint8Array> => (engine === 'ts' ? createHeap(kind, { engine }) : createHeap(kind));
  it.each(allocatorKinds)('%s: alloc and realloc of each size work or throw a coded error', (kind) => {
    const heap = open(kind);
    try {
      const witness = heap.alloc(100).fill(0x5a);
      for (const size of sizes) {
        const code = codeOf(() => {
          const block = heap.alloc(size);
          expect(block.length).toBe(size);
          if (size > 0) {
            block[0] = 1;
            block[size - 1] = 2;
          }
          heap.free(block);
        });
        if (code !== undefined) expect(allowed).toContain(code);
        // past a Buffer's reach the native engine says so before it allocates anything
        if (engine === 'native' && size > MAX) expect(code).toBe('ERR_HEAPLAB_INVALID_SIZE');

        const small = heap.alloc(8).fill(9);
        let grown: Uint8Array | undefined;
        const reallocCode = codeOf(() => {
          grown = heap.realloc(small, size);
        });
        if (reallocCode === undefined) {
          expect(grown!.length).toBe(size);
          expect(grown!.subarray(0, 8).every((x) => x === 9)).toBe(true);
          heap.free(grown!);
        } else {
          expect(allowed).toContain(reallocCode);
          // a failed realloc leaves the old block as it was, still this heap's to free
          expect(small.every((x) => x === 9)).toBe(true);
          heap.free(small);
        }
        heap.check();
      }
      expect(witness.every((x) => x === 0x5a)).toBe(true);
      heap.free(witness);
      expect(heap.stats()).toMatchObject({ blocksInUse: 0, bytesInUse: 0 });
      heap.check();
    } finally {
      heap.destroy();
    }
  });

  it('sizes that are not safe non-negative integers are ERR_HEAPLAB_INVALID_SIZE', () => {
    const heap = open('tlsf');
    try {
      for (const bad of [2 ** 53, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '8', 8n]) {
        expect(codeOf(() => heap.alloc(bad as number))).toBe('ERR_HEAPLAB_INVALID_SIZE');
      }
      heap.check();
    } finally {
      heap.destroy();
    }
  });
});

describe('the binding refuses a Buffer longer than Node makes, before allocating', () => {
  it.each(allocatorKinds)('%s: NativeHeap.alloc and realloc past maxBufferLength return invalidSize', (kind) => {
    const native = new binding.NativeHeap(kind, 0, 0, 'mmap', undefined, undefined, 1 << 20);
    const block = native.alloc(1, 64, 16, false);
    expect(typeof block).not.toBe('number');
    expect(native.alloc(2, (1 << 20) + 1, 16, false)).toBe(Status.invalidSize);
    expect(native.realloc(1, 3, (1 << 20) + 1, block as Buffer)).toBe(Status.invalidSize);
    expect(native.stats()).toMatchObject({ blocksInUse: 1, failedAllocs: 0 });
    expect(native.free(1, block as Buffer)).toBe(Status.ok);
    expect(native.check()).toMatchObject({ invariants: 0 });
    native.destroy();
  });
});
