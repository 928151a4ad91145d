/**
 * The typed contract of the native addon (build/Release/heaplab.node), written by
 * hand. lib/heap/heap.ts is its only user: it validates every argument first, so the
 * addon trusts types and ranges. Failures come back as integer statuses
 * (see `Status` in lib/errors.ts), never as exceptions.
 */

/** Name of an allocator compiled into the addon. */
export type NativeAllocatorName = 'tlsf' | 'dlmalloc' | 'liballoc';

/** What `NativeHeap#check` found. */
export interface NativeCheckResult {
  /** Broken invariants counted by the allocator's own heap walker (0 = sound). */
  invariants: number;
  /** Ids of live blocks whose usable size or alignment no longer matches what JS was given. */
  blocks: number[];
}

/** Counters kept by the binding and the page source. */
export interface NativeStats {
  /** Bytes the heap holds from its page source now (the page cache's not included). */
  bytesMapped: number;
  /** Most bytes the heap held at any time. */
  peakBytesMapped: number;
  /** mmap source: calls to the system's mmap and munmap; arena: alloc_page and free_page calls. */
  pageMaps: number;
  pageUnmaps: number;
  /** mmap source: mremap calls behind resize_page (a block on its own pages resized in place or moved). */
  pageRemaps: number;
  /** mmap source: bytes in the page cache (given back by the heap, kept from the system); 0 elsewhere. */
  bytesCached: number;
  /** mmap source: alloc_page calls served from the page cache, and those that went to the system. */
  cacheHits: number;
  cacheMisses: number;
  /** mmap source: bytes given back to the system in total. */
  bytesReleased: number;
  /** mmap source: bytes of fresh runs faulted in by the mapping call (the cache's prefault), in total. */
  bytesPrefaulted: number;
  /** Sum of the sizes requested by live blocks. */
  bytesInUse: number;
  peakBytesInUse: number;
  blocksInUse: number;
  peakBlocksInUse: number;
  /** Successful allocations, frees (explicit or by finalizer) and reallocations. */
  allocs: number;
  frees: number;
  reallocs: number;
  /** Allocations and reallocations that returned out-of-memory. */
  failedAllocs: number;
  /** Blocks freed by a Buffer's finalizer rather than by `free`. */
  finalized: number;
  /**
   * The thread cache (`cache: true`; 0 elsewhere), summed over its threads: mallocs served
   * from a bin, and by a refill; batches given back to the design; bytes in bins now;
   * second frees of a cached block, ignored; instances of the design made so far (arenas:
   * a thread refills from the one it was given, so threads rarely share a lock); lists of
   * blocks a thread took from its arena's depot, where another thread's full bin left them
   * (blocks made on one thread and freed on another).
   */
  threadCacheHits: number;
  threadCacheMisses: number;
  threadCacheFlushes: number;
  threadCacheBytes: number;
  threadCacheDoubleFrees: number;
  threadCacheArenas: number;
  threadCacheTransfers: number;
}

/** The mmap page source's cache policy (hl_page_cache_config in native/pages/pages.h), every field given. */
export interface NativePageCacheOptions {
  enabled: boolean;
  floor: number;
  percent: number;
  decayMs: number;
  runMax: number;
  prefault: number;
}

/** What the debug layer (native/debug/debug.h) found wrong with one block. */
export interface NativeFinding {
  kind: 'overflow' | 'use-after-free' | 'bad-magic' | 'double-free';
  /** Bytes the block was asked for (0 when its header is unreadable). */
  size: number;
  /** The requester id given to alloc/realloc (0: unknown). */
  requester: number;
  /** First wrong byte: from the block's start, or (overflow) from its end. */
  offset: number;
}

/** Debug-mode settings, all given (lib/heap/heap.ts fills in the defaults). */
export interface NativeDebugOptions {
  /** Freed blocks held back before they really go back (0: none). */
  quarantine: number;
  /** Most bytes the quarantine holds. */
  quarantineBytes: number;
  /** A full check every N operations; 0 for never. */
  checkEvery: number;
}

/** What NativeHeap#region returns. */
export interface NativeRegion {
  buffer: ArrayBuffer;
  /** Allocates (align 16 and not zeroed when omitted); the block's offset in `buffer`, or a negated status. */
  alloc(size: number, align?: number, zero?: boolean): number;
  /** Frees the block a view over `buffer` starts; a status (notLive if it starts none). */
  free(view: Uint8Array): number;
}

/** One heap: one allocator instance over its own page source. */
export declare class NativeHeap {
  /**
   * @param kind an allocator name from `allocators`
   * @param limit byte limit of the page source, 0 for none
   * @param pageSize page size in bytes, 0 for the system's
   * @param pages the page source: 'mmap' (anonymous mappings) or 'arena' (deterministic)
   * @param debug debug mode (native/debug/debug.h) when given: magics, canaries, fill patterns, quarantine
   * @param pageCache the mmap source's page cache (native/pages/pages.h); the defaults when absent
   * @param maxBufferLength the longest Buffer this Node.js makes (buffer.constants.MAX_LENGTH): longer
   *   blocks are refused with the invalidSize status (Node would refuse the Buffer after the allocation)
   * Construction never throws; `status()` is non-zero when the heap did not come up.
   */
  /** A hold on the shared heap of `key` (NativeHeap#share in another thread); status() is destroyed if there is none. */
  constructor(key: number, maxBufferLength?: number);
  constructor(
    kind: string,
    limit: number,
    pageSize: number,
    pages?: 'mmap' | 'arena',
    debug?: NativeDebugOptions,
    pageCache?: NativePageCacheOptions,
    maxBufferLength?: number,
  );
  /** 0 when the heap is usable, else the status that prevented it. */
  status(): number;
  /**
   * Allocates `size` bytes aligned to `align` (a power of two), zeroed if asked, and
   * returns an external Buffer over them, owned by the token `id` (unique per heap).
   * Returns a status number on failure.
   */
  alloc(id: number, size: number, align: number, zero: boolean, requester?: number): Buffer | number;
  /** Frees the block of token `id` and detaches `buffer`. Returns a status. */
  free(id: number, buffer: Uint8Array): number;
  /**
   * Resizes the block of token `id` to `size`, keeping its contents; on success the
   * old `buffer` is detached and a new Buffer owned by `newId` returned. On failure,
   * a status, and the old block is untouched.
   */
  realloc(id: number, newId: number, size: number, buffer: Uint8Array, requester?: number): Buffer | number;
  /** Usable bytes of the block of token `id`, or a negated status. */
  usableSize(id: number): number;
  /** Current counters. Works after destroy (the last values). */
  stats(): NativeStats;
  /** Walks the heap; a status number if the heap is destroyed. */
  check(): NativeCheckResult | number;
  /**
   * Detaches this thread's live Buffers and gives up its hold; `everywhere` (default true)
   * ends the heap for every thread first. The pages go back with the last hold. A status.
   */
  destroy(everywhere?: boolean): number;
  /** Lets other threads hold this heap (new NativeHeap(key)); the key, or a negated status. */
  share(): number;
  /** The design's walk with each piece's request where it is one of this thread's Buffers (NaN elsewhere); a status if destroyed. */
  walk(): (NativeWalk & { requested: Float64Array; base: number; pageSize: number }) | number;
  /**
   * Region mode (an arena heap; lib/heap/unsafe-heap.ts), once per heap: the ArrayBuffer over
   * the whole arena and the hot path as functions bound to the heap (a status if the heap is not
   * on the arena source, or region() was called before). The buffer holds a reference on the
   * heap's memory until it is collected or the heap destroyed (which detaches it).
   */
  region(): NativeRegion | number;
  /** Region mode: resizes the block at `offset`; the new offset, or a negated status (the old block stays). */
  reallocAt(offset: number, length: number, size: number): number;
  /** Region mode: usable bytes of the block at `offset`, or a negated status. */
  usableAt(offset: number): number;
  /** Debug mode: what the layer found since the last call (each finding once); [] otherwise. */
  findings(): NativeFinding[];
  /** Debug mode, for tests: the address of the block of token `id`, or a negated status. */
  debugAddress(id: number): number;
  /**
   * Debug mode, for tests standing in for buggy native code: writes `byte` at
   * `address` if the debug layer has a block there (live or quarantined, header
   * and canary included). Returns a status.
   */
  debugPoke(address: number, byte: number): number;
}

/** A trace as parallel arrays (see lib/trace/workloads.ts). */
export interface NativeTrace {
  op: Uint8Array;
  id: Uint32Array;
  size: Float64Array;
  alignLog2: Uint8Array;
  maxId: number;
}

export interface NativeReplayOptions {
  pages: 'arena' | 'mmap';
  /** Byte limit of the page source, 0 for none. */
  limit: number;
  pageSize: number;
  /** Address space reserved for the arena. */
  reserve: number;
  /** Report each operation's resulting offset. */
  offsets: boolean;
  /** Copy the arena's bytes after the trace, pointers turned into offsets. */
  snapshot: boolean;
  /** Write the first and last byte of each new block. */
  touch: boolean;
  /** Walk the heap after the trace (allocator.h's walk), before its blocks are freed. */
  walk?: boolean;
}

/** A walk, in columns (lib/heap/walk.ts): offsets from the arena's base, addresses on mmap. */
export interface NativeWalk {
  start: Float64Array;
  size: Float64Array;
  payload: Float64Array;
  usable: Float64Array;
  state: Uint8Array;
  region: Uint32Array;
}

export interface NativeReplayResult {
  elapsedNs: number;
  failures: number;
  liveBlocks: number;
  invariants: number;
  stats: { bytesMapped: number; peakBytesMapped: number; pageMaps: number; pageUnmaps: number; highWater?: number };
  offsets?: Float64Array;
  snapshot?: Uint8Array;
  /** The arena base's high 32 bits (its low 32 bits are 0), with `snapshot`. */
  baseHigh?: number;
  /** With `walk`: the heap after the trace. */
  walk?: NativeWalk;
  bytesMappedAfterDestroy: number;
}

/**
 * Replays a whole trace in C against a fresh heap of `kind` (no crossing into JS
 * per operation) and tears the heap down. Returns a status number on failure.
 */
export declare function replay(kind: string, trace: NativeTrace, options: NativeReplayOptions): NativeReplayResult | number;

/** Allocators compiled into this addon. */
export declare const allocators: NativeAllocatorName[];
/**
 * An external Buffer of `size` bytes (at most 1 MiB) over static bytes, with no allocator,
 * record or reference behind it (or a status): the bench's floor under the safe path.
 * Detach it (detachArrayBuffer(buf.buffer)) before anything could write through it.
 */
export declare function externalBufferFloor(size: number): Buffer | number;
/** Detaches an ArrayBuffer (the ts engine's destroy() uses it on its heap's buffer); a status. */
export declare function detachArrayBuffer(buffer: ArrayBuffer): number;
/** The operating system's page size. */
export declare const systemPageSize: number;
/** The addon's status codes by name (enum HlStatus in native/node/node.h, exported by addon.cc); lib/errors.ts's Status mirrors it. */
export declare const statuses: Readonly<Record<string, number>>;
/** The trace operation codes (enum hl_trace_op in native/trace/trace.h); lib/trace/trace.ts's Op mirrors it. */
export declare const traceOps: Readonly<Record<string, number>>;
/** hl_page_cache_defaults(): the mmap source's page cache policy when none is given. */
export declare const pageCacheDefaults: Readonly<NativePageCacheOptions>;

/** Latency histogram of one bench run: non-empty log-linear buckets (lower bound in ns) and counts. */
export interface NativeBenchHistogram {
  lowerNs: Float64Array;
  count: Float64Array;
  total: number;
  maxNs: number;
}

export interface NativeBenchOptions {
  /** Write each new block's first and last byte. */
  touch: boolean;
  /** Run a second pass timing every operation (fills `alloc` and `free`). */
  latency: boolean;
  /** Throughput passes; the best is kept. */
  throughputRuns: number;
  /** Memory samples kept over time (at most 4096). */
  maxSamples: number;
  /** A peer's shared library, instead of env HEAPLAB_JEMALLOC… or the Debian path. */
  path?: string;
}

export interface NativeBenchResult {
  elapsedNs: number;
  latencyElapsedNs: number;
  ops: number;
  failures: number;
  peakLive: number;
  /** Bytes held from the system at peak, minus the baseline (see memorySource). */
  peakMapped: number;
  baselineMapped: number;
  /** Growth of the process's resident set at peak (sampled). */
  peakRss: number;
  memorySource: string;
  /** The peer library loaded, or "". */
  path: string;
  alloc: NativeBenchHistogram;
  free: NativeBenchHistogram;
  /** Of alloc and free, the operations during which a heaplab allocator called its page source (empty for the others). */
  allocCrossed: NativeBenchHistogram;
  freeCrossed: NativeBenchHistogram;
  /** [op, mapped, live, rss] per sample. */
  samples: Float64Array;
}

/**
 * The benchmark's replay (native/bench/bench.c): one trace per thread on one shared heap
 * of `target` (tlsf, dlmalloc, liballoc, glibc, jemalloc, mimalloc, tcmalloc), timed in C.
 */
export declare function bench(target: string, traces: NativeTrace[], options: NativeBenchOptions): NativeBenchResult | { error: string };
/** The clock bench() uses, and what one reading costs. */
export declare function benchClock(): { name: string; nsPerTick: number; overheadNs: number; minOverheadNs: number };
