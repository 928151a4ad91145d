/**
 * The Node API over a native allocator: `createHeap(kind, options)` returns a Heap
 * whose `alloc` hands out Buffers whose bytes are the allocator's block.
 *
 * Ownership is checked against this heap's own record of what it handed to JS (a
 * record on the Buffer under a module-private symbol, which the addon checks
 * against the block's address and length), never by reading memory before the
 * buffer: a subarray, a copy or another heap's Buffer does not match.
 */
import {
  DestroyedError,
  DoubleFreeError,
  ForeignBufferError,
  HeapCorruptionError,
  InvalidArgumentError,
  InvalidSizeError,
  Status,
  UnsupportedError,
  UnknownAllocatorError,
  statusError,
} from '../errors.js';
import { binding, type NativeHeap } from '../addon/native.js';
import { checkPageCacheOptions, type PageCacheOptions } from '../pages/page-cache.js';
import { callerFrame, checkDebugOptions, type DebugOptions, findingsError, RequesterTable } from './debug.js';
import { createPortHeap, type PortHeap } from './port-heap.js';
import { checkAlignment, checkBoolean, checkByteCount, checkOptions, checkSize, describe } from '../validate.js';
import { type AllocatorKind, allocatorKinds } from '../kinds.js';
import { constants as bufferConstants } from 'node:buffer';

/** The longest Buffer this Node.js can make (2**32 on Node 20): a native block is one Buffer, so no larger. */
export const MAX_BUFFER_LENGTH: number = bufferConstants.MAX_LENGTH;

/** Throws InvalidSizeError for a size no Buffer can have (checkSize has taken the rest). */
function checkBufferLength(size: number, what: string): void {
  if (size > MAX_BUFFER_LENGTH) {
    throw new InvalidSizeError(
      `${what}: ${size} bytes is more than a Buffer can hold in this Node.js (buffer.constants.MAX_LENGTH = ${MAX_BUFFER_LENGTH})`,
    );
  }
}

export interface HeapOptions {
  /** Most bytes the heap may map from the system; allocations beyond fail with ERR_HEAPLAB_OUT_OF_MEMORY. Default: no limit. */
  limit?: number;
  /** Page size of the heap's page source, a power of two ≥ 4096 (default: the system's). */
  pageSize?: number;
  /**
   * Where pages come from: 'mmap' (default: anonymous mappings) or 'arena' (one
   * reserved region handed out by a fixed rule, so the C heap makes exactly the
   * decisions its TypeScript port makes; the region is `limit` bytes, or 1 GiB).
   */
  pages?: 'mmap' | 'arena';
  /**
   * 'native' (default): the C allocator, blocks are Buffers over its memory.
   * 'ts': the pure-TypeScript port, blocks are Uint8Array views over its ArrayBuffer
   * (see lib/heap/port-heap.ts). Both make the same decisions on the arena page source.
   */
  engine?: 'native' | 'ts';
  /**
   * Debug mode (native engine): each block gets a header with magic words, a
   * canary after it and fill patterns (0xAA fresh, 0xDD freed); freed blocks
   * wait in a quarantine. `free` and `check` then throw HeapCorruptionError
   * (ERR_HEAPLAB_CORRUPT) naming the block's size and requester when native code
   * wrote past a block's end or into a freed block. `true` for the defaults.
   */
  debug?: boolean | DebugOptions;
  /**
   * The mmap page source's cache of freed page runs (native engine, `pages: 'mmap'`):
   * runs the heap gives back are kept, bounded by the heap's size, and handed out
   * again without a system call. `true` or absent: the defaults; `false`: off
   * (every run goes straight back to the system); an object tunes it.
   */
  pageCache?: boolean | PageCacheOptions;
  /**
   * The thread cache (native engine): per-thread bins of small blocks in front
   * of the design (native/cache/cache.h), so that worker threads sharing the
   * heap rarely take its lock. Default false: the design alone. Not with `debug`.
   */
  cache?: boolean;
}


import type { AllocOptions, Heap, HeapStats, NativeHeapApi, ReallocOptions, SharedHeapHandle } from './types.js';

/** The options of a ts-engine heap: the port always runs on the arena page source, without debug mode, page cache or thread cache. */
export interface TsHeapOptions {
  engine: 'ts';
  limit?: number;
  pageSize?: number;
  pages?: 'arena';
}
import { refuseCloning } from './not-cloneable.js';
import { heapWalk, type HeapWalk } from '../walk.js';

interface BlockRecord {
  heap: object;
  id: number;
  live: boolean;
}

/*
 * Each Buffer a heap hands out carries its record under a module-private symbol:
 * 18 ns per allocation where a WeakMap entry costs ~600 ns (measured on this
 * machine). A subarray, a copy or another heap's Buffer has no record of this
 * heap; and the addon checks that the Buffer it is given for a free really spans
 * the block's own bytes, so even a forged record cannot free a block that a live
 * Buffer still shows.
 */
const blockOf = Symbol('heaplab.block');
type Blocked = Uint8Array & { [blockOf]?: BlockRecord };

const defaultAlign = 16;

class NativeBackedHeap implements NativeHeapApi {
  readonly kind: AllocatorKind;
  readonly #native: NativeHeap;
  #nextId = 1;
  #destroyed = false;
  #attached = false;
  /** Debug mode's requester names; null when the heap is not in debug mode. */
  readonly #requesters: RequesterTable | null;

  /** attached: a hold on another thread's heap (attachHeap), which `using` closes rather than destroys. */
  constructor(kind: AllocatorKind, native: NativeHeap, debug: boolean, attached = false) {
    this.#attached = attached;
    this.kind = kind;
    this.#native = native;
    this.#requesters = debug ? new RequesterTable() : null;
    natives.set(this, native);
    refuseCloning(this, 'post heap.share() and call attachHeap(handle) there');
  }

  /** Debug mode: the requester id of a new block (label, else the caller's frame). */
  #requester(label: unknown): number | undefined {
    if (!this.#requesters) return undefined;
    if (label !== undefined && typeof label !== 'string') {
      throw new InvalidArgumentError(`Expected a string for label but received ${describe(label)}`);
    }
    return this.#requesters.id(label ?? callerFrame());
  }

  /** Debug mode: throws what the native layer found since the last look. */
  #throwFindings(what: string): void {
    if (!this.#requesters) return;
    const error = findingsError(what, this.kind, this.#native.findings(), this.#requesters);
    if (error) throw error;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  #assertAlive(method: string): void {
    if (this.#destroyed) throw new DestroyedError(`heap.${method}: this ${this.kind} heap was destroyed`);
  }

  /** The live record of `buf`, or the error that says why there is none. */
  #recordOf(buf: unknown, method: string): BlockRecord {
    if (!(buf instanceof Uint8Array)) {
      throw new ForeignBufferError(`heap.${method}: expected a Buffer from heap.alloc but received ${describe(buf)}`);
    }
    const record = (buf as Blocked)[blockOf];
    if (record === undefined || record.heap !== this) {
      throw new ForeignBufferError(
        `heap.${method}: this Buffer is not a block of this ${this.kind} heap (a subarray, a copy, or another heap's block?)`,
      );
    }
    if (!record.live) throw new DoubleFreeError(`heap.${method}: this block was already freed (or reallocated)`);
    return record;
  }

  #adopt(result: Buffer | number, id: number, what: string): Buffer {
    if (typeof result === 'number') throw statusError(result, what);
    (result as Blocked)[blockOf] = { heap: this, id, live: true };
    return result;
  }

  alloc(size: number, options?: AllocOptions): Buffer {
    this.#assertAlive('alloc');
    checkSize(size);
    checkBufferLength(size, `heap.alloc(${size})`);
    const opts = checkOptions(options, 'alloc options', ['align', 'zero', 'label']);
    const align = opts.align === undefined ? defaultAlign : checkAlignment(opts.align);
    const zero = opts.zero === undefined ? false : checkBoolean(opts.zero, 'zero');
    if (opts.label !== undefined && typeof opts.label !== 'string') {
      throw new InvalidArgumentError(`Expected a string for label but received ${describe(opts.label)}`);
    }
    const requester = this.#requester(opts.label);
    const id = this.#nextId++;
    return this.#adopt(this.#native.alloc(id, size, align, zero, requester), id, `heap.alloc(${size})`);
  }

  free(buf: Buffer): void {
    this.#assertAlive('free');
    const record = this.#recordOf(buf, 'free');
    const status = this.#native.free(record.id, buf);
    if (status !== Status.ok) throw statusError(status, 'heap.free');
    record.live = false;
    this.#throwFindings('heap.free');
  }

  realloc(buf: Buffer, size: number, options?: ReallocOptions): Buffer {
    this.#assertAlive('realloc');
    const record = this.#recordOf(buf, 'realloc');
    checkSize(size);
    checkBufferLength(size, `heap.realloc(${size})`);
    const opts = checkOptions(options, 'realloc options', ['label']);
    if (opts.label !== undefined && typeof opts.label !== 'string') {
      throw new InvalidArgumentError(`Expected a string for label but received ${describe(opts.label)}`);
    }
    const requester = this.#requester(opts.label);
    const id = this.#nextId++;
    const result = this.#native.realloc(record.id, id, size, buf, requester);
    if (typeof result !== 'number') record.live = false;
    return this.#adopt(result, id, `heap.realloc(${size})`);
  }

  /** @internal the token of a live block (debugInternals). */
  idOf(buf: Buffer): number {
    return this.#recordOf(buf, 'debugAddress').id;
  }

  usableSize(buf: Buffer): number {
    this.#assertAlive('usableSize');
    const record = this.#recordOf(buf, 'usableSize');
    const n = this.#native.usableSize(record.id);
    if (n < 0) throw statusError(-n, 'heap.usableSize');
    return n;
  }

  stats(): HeapStats {
    return this.#native.stats();
  }

  check(): void {
    this.#assertAlive('check');
    const result = this.#native.check();
    if (typeof result === 'number') throw statusError(result, 'heap.check');
    const problems: string[] = [];
    if (result.invariants > 0) problems.push(`the ${this.kind} heap walker counted ${result.invariants} broken invariant(s)`);
    for (const id of result.blocks) problems.push(`block #${id} no longer has the size or alignment it was given`);
    const found = this.#requesters ? findingsError('heap.check', this.kind, this.#native.findings(), this.#requesters) : null;
    if (found) throw new HeapCorruptionError(`heap.check: the ${this.kind} heap is corrupt`, [...problems, ...found.problems], found.findings);
    if (problems.length) throw new HeapCorruptionError(`heap.check: the ${this.kind} heap is corrupt`, problems);
  }

  walk(): HeapWalk {
    this.#assertAlive('walk');
    const w = this.#native.walk();
    if (typeof w === 'number') throw statusError(w, 'heap.walk');
    return heapWalk(w, w.requested, w.base, w.pageSize);
  }

  destroy(): void {
    this.#assertAlive('destroy');
    this.#destroyed = true;
    const status = this.#native.destroy(true);
    if (status !== Status.ok) throw statusError(status, 'heap.destroy');
  }

  close(): void {
    this.#assertAlive('close');
    this.#destroyed = true;
    const status = this.#native.destroy(false);
    if (status !== Status.ok) throw statusError(status, 'heap.close');
  }

  share(): SharedHeapHandle {
    this.#assertAlive('share');
    const key = this.#native.share();
    if (key < 0) {
      if (-key === Status.foreign) throw new UnsupportedError('heap.share: a debug heap cannot be shared (its requester names live in one thread)');
      throw statusError(-key, 'heap.share');
    }
    return { heaplab: 'shared-heap', kind: this.kind, key };
  }

  /** `using`: the heap's creator destroys it; a thread that attached it closes its hold. */
  [Symbol.dispose](): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#native.destroy(!this.#attached); // destroyed elsewhere already: nothing left to do
  }

}

/**
 * A Heap over a heap that another thread shared (`heap.share()`, posted here).
 * Blocks are this thread's own; `close()` when done (or `destroy()` to end the
 * heap for every thread).
 *
 * ```ts
 * // main thread
 * const heap = createHeap('tlsf', { cache: true });
 * new Worker('./w.js', { workerData: heap.share() });
 * // w.js
 * const heap = attachHeap(workerData);
 * heap.free(heap.alloc(100));
 * heap.close();
 * ```
 */
export function attachHeap(handle: SharedHeapHandle): NativeHeapApi {
  const h = handle as Partial<SharedHeapHandle> | null;
  if (typeof h !== 'object' || h === null || h.heaplab !== 'shared-heap' || typeof h.key !== 'number' ||
      !Number.isSafeInteger(h.key) || h.key <= 0 || typeof h.kind !== 'string' || !(allocatorKinds as readonly string[]).includes(h.kind)) {
    throw new InvalidArgumentError(`attachHeap: expected what heap.share() returns but received ${describe(handle)}`);
  }
  const native = new binding.NativeHeap(h.key, MAX_BUFFER_LENGTH);
  if (native.status() !== Status.ok) {
    throw new DestroyedError(`attachHeap: no ${h.kind} heap with key ${h.key} in this process (destroyed already, or shared by another process)`);
  }
  return new NativeBackedHeap(h.kind, native, false, true);
}

/**
 * Creates a heap of the given allocator over its own mmap page source.
 *
 * ```ts
 * const heap = createHeap('tlsf', { limit: 64 << 20 });
 * const buf = heap.alloc(4096);
 * heap.free(buf); // buf.length === 0 now
 * ```
 */
export function createHeap(kind: AllocatorKind, options: TsHeapOptions): PortHeap;
export function createHeap(kind: AllocatorKind, options?: HeapOptions & { engine?: 'native' }): NativeHeapApi;
export function createHeap(kind: AllocatorKind, options?: HeapOptions | TsHeapOptions): NativeHeapApi | PortHeap {
  if (typeof kind !== 'string' || !(allocatorKinds as readonly string[]).includes(kind)) {
    throw new UnknownAllocatorError(`Expected one of ${allocatorKinds.join(', ')} for kind but received ${describe(kind)}`);
  }
  const opts = checkOptions(options as HeapOptions | undefined, 'createHeap options', ['limit', 'pageSize', 'pages', 'engine', 'debug', 'pageCache', 'cache']);
  const cache = opts.cache === undefined ? false : checkBoolean(opts.cache, 'cache');
  const debug = checkDebugOptions(opts.debug);
  if (opts.engine !== undefined && opts.engine !== 'native' && opts.engine !== 'ts') {
    throw new InvalidArgumentError(`Expected 'native' or 'ts' for engine but received ${describe(opts.engine)}`);
  }
  if (opts.pages !== undefined && opts.pages !== 'mmap' && opts.pages !== 'arena') {
    throw new InvalidArgumentError(`Expected 'mmap' or 'arena' for pages but received ${describe(opts.pages)}`);
  }
  const limit = opts.limit === undefined ? 0 : checkByteCount(opts.limit, 'limit');
  const pageSize = opts.pageSize === undefined ? 0 : checkByteCount(opts.pageSize, 'pageSize');
  if (opts.limit !== undefined && limit === 0) throw new InvalidArgumentError('Expected a positive limit but received 0');
  const pageCache = checkPageCacheOptions(opts.pageCache);
  if (opts.pageCache !== undefined && (opts.engine === 'ts' || opts.pages === 'arena')) {
    throw new InvalidArgumentError("pageCache belongs to the mmap page source; the arena source (and the ts engine) hand pages out by a fixed rule");
  }
  if (cache && (opts.engine === 'ts' || debug)) {
    throw new InvalidArgumentError('cache is a layer over the native designs, and not combined with debug mode');
  }
  if (opts.engine === 'ts') {
    if (opts.pages === 'mmap') throw new InvalidArgumentError("The ts engine always uses the arena page source; pages: 'mmap' is not possible");
    if (debug) throw new InvalidArgumentError('Debug mode is a layer over the native allocators; the ts engine has none');
    return createPortHeap(kind, limit, pageSize);
  }
  if (!(binding.allocators as readonly string[]).includes(kind)) {
    throw new UnknownAllocatorError(`The ${kind} allocator is not in this build of heaplab (built: ${binding.allocators.join(', ')})`);
  }
  const pages = (opts.pages as 'mmap' | 'arena' | undefined) ?? 'mmap';
  const native = new binding.NativeHeap(cache ? `${kind}+cache` : kind, limit, pageSize, pages, debug ?? undefined, pageCache, MAX_BUFFER_LENGTH);
  const status = native.status();
  if (status !== Status.ok) throw statusError(status, `createHeap(${JSON.stringify(kind)})`);
  return new NativeBackedHeap(kind, native, debug !== null);
}

const natives = new WeakMap<object, NativeHeap>();

/**
 * @internal For tests of debug mode only (not exported from the package): stands in for
 * buggy native code that was handed a Buffer, writing where JS cannot, such as
 * past a block's end or into a block after it was freed. Only on a debug heap,
 * and only where the debug layer has a block.
 */
export function debugInternals(heap: Heap<Buffer>): { address(buf: Buffer): number; poke(address: number, byte: number): void } {
  const native = natives.get(heap);
  if (!native || !(heap instanceof NativeBackedHeap)) throw new InvalidArgumentError('debugInternals: not a native heap');
  return {
    address(buf: Buffer): number {
      const n = native.debugAddress(heap.idOf(buf));
      if (n < 0) throw statusError(-n, 'debugAddress');
      return n;
    },
    poke(address: number, byte: number): void {
      const status = native.debugPoke(address, byte);
      if (status !== Status.ok) throw statusError(status, 'debugPoke');
    },
  };
}

/** Allocators compiled into this build. */
export function availableAllocators(): AllocatorKind[] {
  return binding.allocators.filter((k): k is AllocatorKind => (allocatorKinds as readonly string[]).includes(k));
}
