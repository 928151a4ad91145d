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
export { createHeap, attachHeap, availableAllocators } from './heap/heap.js';
export { createUnsafeHeap } from './heap/unsafe-heap.js';
export type { UnsafeHeap, UnsafeHeapOptions } from './heap/unsafe-heap.js';
export { allocatorKinds } from './kinds.js';
export type { HeapOptions, TsHeapOptions } from './heap/heap.js';
export type { PageCacheOptions } from './pages/page-cache.js';
export type { DebugOptions } from './heap/debug.js';
export { WalkState, walkFigures } from './walk.js';
export type { HeapWalk, Walk, WalkFigures } from './walk.js';
export type { AllocOptions, Heap, HeapStats, NativeHeapApi, ReallocOptions, SharedHeapHandle } from './heap/types.js';
export type { AllocatorKind } from './kinds.js';
export type { PortHeap } from './heap/port-heap.js';
export { replayNative, replayPort } from './replay/replay.js';
export { compareTrace, firstDivergence } from './replay/compare.js';
export type { ReplayResult } from './replay/replay.js';
export type { Comparison, Divergence } from './replay/compare.js';
export { defaultTraces } from './trace/workloads.js';
export { TraceBuilder, Op } from './trace/trace.js';
export type { Trace } from './trace/trace.js';
export { readTrace, writeTrace, summarizeTrace } from './trace/file.js';
export type { RecordedTrace, TraceSummary } from './trace/file.js';
export {
  HeaplabError,
  InvalidSizeError,
  InvalidAlignmentError,
  InvalidArgumentError,
  OutOfMemoryError,
  DoubleFreeError,
  ForeignBufferError,
  DestroyedError,
  HeapDetachedError,
  HeapCorruptionError,
  UnknownAllocatorError,
  UnsupportedError,
  AddonNotFoundError,
} from './errors.js';
export type { HeaplabErrorCode, HeapFinding } from './errors.js';
export { PreloadLibraryNotFoundError } from './preload/preload.js';
export { TraceFormatError } from './trace/file.js';
