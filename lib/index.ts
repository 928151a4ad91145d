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
export { createHeap, availableAllocators } from './heap/heap.js';
export { allocatorKinds } from './kinds.js';
export type { AllocOptions, DebugOptions, Heap, HeapOptions, HeapStats, PageCacheOptions, ReallocOptions } from './heap/heap.js';
export type { AllocatorKind } from './kinds.js';
export type { PortHeap } from './heap/port-heap.js';
export { replayNative, replayPort, compareTrace, firstDivergence } from './replay/replay.js';
export type { ReplayResult, Comparison, Divergence } from './replay/replay.js';
export { defaultTraces, TraceBuilder, Op } from './trace/workloads.js';
export type { Trace } from './trace/workloads.js';
export * from './errors.js';
