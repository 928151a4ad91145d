/**
 * heaplab: real C memory allocators in Node.
 *
 * ```ts
 * import { createHeap } from 'heaplab';
 * const heap = createHeap('tlsf');
 * const buf = heap.alloc(100);
 * heap.free(buf);
 * ```
 */
export { createHeap, availableAllocators, allocatorKinds } from './heap.js';
export type { AllocatorKind, AllocOptions, Heap, HeapOptions, HeapStats } from './heap.js';
export * from './errors.js';
