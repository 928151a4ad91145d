/**
 * types.ts — what every heap promises, native or ts engine: the interface that
 * ./heap.ts (native Buffers) and ./port-heap.ts (views over a port's
 * ArrayBuffer) both implement.
 */
import type { NativeStats } from '../addon/native.js';
import type { AllocatorKind } from '../kinds.js';
import type { HeapWalk } from '../walk.js';

export interface ReallocOptions {
  /** Debug mode: who asks for the block, in reports (default: the caller's file and line). */
  label?: string;
}

export interface AllocOptions {
  /** Alignment of the block, a power of two (default 16, the minimum every block has). */
  align?: number;
  /** Zero the block's bytes (default false: contents are unspecified). */
  zero?: boolean;
  /** Debug mode: who asks for the block, in reports (default: the caller's file and line). Ignored otherwise. */
  label?: string;
}

/** Counters of a heap. Byte counts are exact integers. */
export type HeapStats = NativeStats;

/** A heap of one allocator. Every method throws a HeaplabError with a `code` on bad input. */
export interface Heap<B extends Uint8Array = Buffer> {
  /** The allocator behind this heap. */
  readonly kind: AllocatorKind;
  /** True once `destroy` ran. */
  readonly destroyed: boolean;
  /** Allocates `size` bytes; the result's length is `size`. */
  alloc(size: number, options?: AllocOptions): B;
  /** Frees a block; afterwards `buf.length === 0` and its memory is unreachable from JS. */
  free(buf: B): void;
  /** Resizes a block, keeping its contents; the old view is detached. On failure the old view stays valid. */
  realloc(buf: B, size: number, options?: ReallocOptions): B;
  /** Usable bytes of the block (at least its length). */
  usableSize(buf: B): number;
  /** Counters: bytes mapped and in use, now and at peak, operation counts. */
  stats(): HeapStats;
  /** Walks the whole heap; throws HeapCorruptionError listing what is broken. */
  check(): void;
  /**
   * Every piece of memory the heap holds, as its design's walker sees it (lib/heap/walk.ts):
   * blocks used and free with their overhead, the design's own bytes, and figures of
   * fragmentation and overhead.
   */
  walk(): HeapWalk;
  /** Frees everything and gives every page back; live Buffers are detached. */
  destroy(): void;
  [Symbol.dispose](): void;
}

/**
 * What `heap.share()` returns: plain data that `postMessage` carries to a worker,
 * where `attachHeap(handle)` gives a Heap over the same C heap.
 */
export interface SharedHeapHandle {
  readonly heaplab: 'shared-heap';
  readonly kind: AllocatorKind;
  /** The heap's key in this process (meaningless in another process). */
  readonly key: number;
}

/** A native heap that threads can share (createHeap's, engine 'native'). */
export interface NativeHeapApi extends Heap<Buffer> {
  /**
   * A handle for other threads (post it; `attachHeap` it there). From now on the
   * heap takes its lock on every call. Each thread frees the blocks it allocated:
   * a Buffer posted to another thread arrives as a copy, which is not a block there.
   */
  share(): SharedHeapHandle;
  /**
   * This thread is done with the heap: its live blocks are freed and their Buffers
   * detached; other threads keep using it. On a heap no one else holds, the same as destroy().
   */
  close(): void;
}

