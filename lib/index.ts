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
export type { AllocatorKind, AllocOptions, DebugOptions, Heap, HeapOptions, HeapStats, PageCacheOptions, ReallocOptions } from './heap.js';
export type { PortHeap } from './port-heap.js';
export { replayNative, replayPort, compareTrace, firstDivergence } from './replay.js';
export type { ReplayResult, Comparison, Divergence } from './replay.js';
export { defaultTraces, TraceBuilder, Op } from './workloads.js';
export type { Trace } from './workloads.js';
export * from './errors.js';
