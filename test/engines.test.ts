// What each engine promises beyond the shared interface (the README's table):
// the ts engine keeps its memory when a block's buffer is named in a transfer
// list, makes every view empty on destroy(), gives coded errors for bad options,
// and says so (ERR_HEAPLAB_DETACHED) if its memory is taken away anyway.
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap } from '../lib/index.js';
import { binding } from '../lib/addon/native.js';
import { codeOf } from './util.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// a small space (limit 1 MiB): a copy of it is cheap
const small = { engine: 'ts', limit: 1 << 20 } as const;

describe.each(allocatorKinds)('%s, ts engine', (kind) => {
  it('a transfer list naming a block\'s buffer copies it; the heap keeps its memory and blocks', () => {
    const heap = createHeap(kind, small);
    const a = heap.alloc(64).fill(7);
    const copy = structuredClone(a, { transfer: [a.buffer as ArrayBuffer] });
    expect(copy[0]).toBe(7);
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(a, [a.buffer as ArrayBuffer]);
    const posted = receiveMessageOnPort(port2)?.message as Uint8Array;
    port1.close();
    expect(posted[63]).toBe(7);
    // still ours, still whole
    expect(a.length).toBe(64);
    expect(a.every((x) => x === 7)).toBe(true);
    const b = heap.alloc(128).fill(9);
    heap.free(a);
    heap.free(b);
    heap.check();
    heap.destroy();
  });

  it('destroy() detaches the space: views of a destroyed heap read as empty and cannot write', () => {
    const heap = createHeap(kind, small);
    const a = heap.alloc(100).fill(3);
    heap.destroy();
    expect(a.length).toBe(0);
    expect(a[0]).toBeUndefined();
    a[0] = 1; // a write to a detached view goes nowhere
    expect(a.length).toBe(0);
    expect(codeOf(() => heap.alloc(8))).toBe('ERR_HEAPLAB_DESTROYED');
    expect(codeOf(() => heap.destroy())).toBe('ERR_HEAPLAB_DESTROYED');
  });

  it('memory taken away from under the heap is ERR_HEAPLAB_DETACHED, never a wrong answer', () => {
    const heap = createHeap(kind, small);
    const a = heap.alloc(100);
    // what ArrayBuffer.prototype.transfer() would do on Node 21+
    binding.detachArrayBuffer(a.buffer as ArrayBuffer);
    expect(codeOf(() => heap.alloc(8))).toBe('ERR_HEAPLAB_DETACHED');
    expect(codeOf(() => heap.free(a))).toBe('ERR_HEAPLAB_DETACHED');
    expect(codeOf(() => heap.check())).toBe('ERR_HEAPLAB_DETACHED');
    heap.destroy();
    expect(heap.destroyed).toBe(true);
  });

  it('a block dropped without free stays allocated until destroy (no finalizer, as documented)', () => {
    const heap = createHeap(kind, small);
    (() => {
      for (let i = 0; i < 10; i++) heap.alloc(1000);
    })();
    gc();
    expect(heap.stats()).toMatchObject({ blocksInUse: 10, bytesInUse: 10_000, finalized: 0 });
    heap.check();
    heap.destroy();
  });
});

describe('ts engine options', () => {
  it('a page size that is not a power of two in range is ERR_HEAPLAB_INVALID_ARGUMENT', () => {
    for (const pageSize of [3, 4095, 6000, 2 ** 40]) {
      expect(codeOf(() => createHeap('tlsf', { engine: 'ts', pageSize }))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    }
    const ok = createHeap('tlsf', { engine: 'ts', pageSize: 8192, limit: 1 << 20 });
    ok.free(ok.alloc(10));
    ok.destroy();
  });

  it('the native engine answers the same page sizes with coded errors', () => {
    for (const pageSize of [3, 4095, 6000]) {
      expect(codeOf(() => createHeap('tlsf', { pageSize }))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    }
    // a power of two, but no system maps a first page of 1 TiB
    expect(codeOf(() => createHeap('tlsf', { pageSize: 2 ** 40 }))).toBe('ERR_HEAPLAB_OUT_OF_MEMORY');
  });
});
