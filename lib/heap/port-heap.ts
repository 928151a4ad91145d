/**
 * The same Heap interface over a TypeScript port: `createHeap(kind, { engine: 'ts' })`.
 *
 * Blocks are Uint8Array views over the port's one address space (an ArrayBuffer),
 * at the block's offset. Unlike native Buffers, a view cannot be detached without
 * detaching the whole space, so after `free` the old view still reads the
 * allocator's memory; the heap refuses it (ERR_HEAPLAB_DOUBLE_FREE) like a native
 * heap does. `offsetOf(view)` gives the block's offset, the number C would see.
 *
 * The space is marked untransferable: a transfer list naming a block's `.buffer`
 * copies it instead of taking the heap's memory away. `destroy()` detaches it,
 * so every view of a destroyed heap reads as empty. A block dropped without
 * `free` stays allocated until `destroy()` (no FinalizationRegistry: it would
 * cost more than the allocation itself).
 */
import { markAsUntransferable } from 'node:worker_threads';
import {
  DestroyedError,
  DoubleFreeError,
  ForeignBufferError,
  HeapCorruptionError,
  HeapDetachedError,
  InvalidArgumentError,
  OutOfMemoryError,
  UnknownAllocatorError,
} from '../errors.js';
import { binding } from '../addon/native.js';
import { refuseCloning } from './not-cloneable.js';
import { heapWalk, WalkBuilder, WalkState, type HeapWalk } from '../walk.js';
import type { AllocOptions, Heap, HeapStats } from './types.js';
import type { AllocatorKind } from '../kinds.js';
import { ArenaPages, DEFAULT_RESERVE, MAX_RESERVE } from '../pages/arena.js';
import { portFactories } from '../ports/index.js';
import type { PortAllocator } from '../ports/types.js';
import { checkAlignment, checkBoolean, checkOptions, checkSize, describe } from '../validate.js';

interface PortBlock {
  offset: number;
  size: number;
  align: number;
  live: boolean;
  /** Its place in the heap's list of live blocks (walk() reads their requests there). */
  slot: number;
}

export interface PortHeap extends Heap<Uint8Array> {
  /** The block's offset in the port's address space (what the C heap on the arena source returns). */
  offsetOf(view: Uint8Array): number;
  /** The port's page source: its ArrayBuffer holds the whole heap, metadata and blocks. */
  readonly pages: ArenaPages;
}

class PortBackedHeap implements PortHeap {
  readonly kind: AllocatorKind;
  readonly pages: ArenaPages;
  readonly #port: PortAllocator;
  readonly #blocks = new WeakMap<Uint8Array, PortBlock>();
  /** The live blocks, in no order (a freed one's place takes the last): walk() reads their requests. */
  readonly #live: PortBlock[] = [];
  #destroyed = false;
  #stats = { bytesInUse: 0, peakBytesInUse: 0, blocksInUse: 0, peakBlocksInUse: 0, allocs: 0, frees: 0, reallocs: 0, failedAllocs: 0 };

  constructor(kind: AllocatorKind, pages: ArenaPages, port: PortAllocator) {
    this.kind = kind;
    this.pages = pages;
    this.#port = port;
    refuseCloning(this, "a ts heap is one thread's (its ArrayBuffer is copied, not shared): post copies of blocks (view.slice())");
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  #alive(method: string): void {
    if (this.#destroyed) throw new DestroyedError(`heap.${method}: this ${this.kind} heap (ts) was destroyed`);
    if (this.pages.buffer.byteLength === 0) {
      throw new HeapDetachedError(
        `heap.${method}: this ${this.kind} heap's memory (its ArrayBuffer) was detached, and its blocks with it; ` +
          'send copies of blocks (view.slice()), not their buffer',
      );
    }
  }

  #record(view: unknown, method: string): PortBlock {
    if (!(view instanceof Uint8Array)) throw new ForeignBufferError(`heap.${method}: expected a view from heap.alloc but received ${describe(view)}`);
    const r = this.#blocks.get(view);
    if (!r) throw new ForeignBufferError(`heap.${method}: this view is not a block of this ${this.kind} heap (ts)`);
    if (!r.live) throw new DoubleFreeError(`heap.${method}: this block was already freed (or reallocated)`);
    return r;
  }

  #counted(delta: number, blocks: number): void {
    const s = this.#stats;
    s.bytesInUse += delta;
    s.blocksInUse += blocks;
    s.peakBytesInUse = Math.max(s.peakBytesInUse, s.bytesInUse);
    s.peakBlocksInUse = Math.max(s.peakBlocksInUse, s.blocksInUse);
  }

  /** Takes a block off the live list: the last one moves into its place. */
  #retire(r: PortBlock): void {
    const last = this.#live.pop()!;
    if (last !== r) {
      last.slot = r.slot;
      this.#live[r.slot] = last;
    }
  }

  #view(offset: number, size: number, align: number): Uint8Array {
    const view = new Uint8Array(this.pages.buffer, offset, size);
    const record: PortBlock = { offset, size, align, live: true, slot: this.#live.length };
    this.#blocks.set(view, record);
    this.#live.push(record);
    return view;
  }

  alloc(size: number, options?: AllocOptions): Uint8Array {
    this.#alive('alloc');
    checkSize(size);
    const opts = checkOptions(options, 'alloc options', ['align', 'zero']);
    const align = opts.align === undefined ? 16 : checkAlignment(opts.align);
    const zero = opts.zero === undefined ? false : checkBoolean(opts.zero, 'zero');
    let offset = align > 16 ? this.#port.memalign(align, size) : zero ? this.#port.calloc(1, size) : this.#port.malloc(size);
    if (offset === 0) {
      this.#stats.failedAllocs++;
      throw new OutOfMemoryError(`heap.alloc(${size}): out of memory (the ${this.kind} port's page source refused more pages)`);
    }
    if (zero && align > 16) this.pages.u8.fill(0, offset, offset + size);
    this.#stats.allocs++;
    this.#counted(size, 1);
    return this.#view(offset, size, Math.max(16, align));
  }

  free(view: Uint8Array): void {
    this.#alive('free');
    const r = this.#record(view, 'free');
    r.live = false;
    this.#retire(r);
    this.#port.free(r.offset);
    this.#stats.frees++;
    this.#counted(-r.size, -1);
  }

  realloc(view: Uint8Array, size: number): Uint8Array {
    this.#alive('realloc');
    const r = this.#record(view, 'realloc');
    checkSize(size);
    const offset = this.#port.realloc(r.offset, size);
    if (offset === 0) {
      this.#stats.failedAllocs++;
      throw new OutOfMemoryError(`heap.realloc(${size}): out of memory`);
    }
    r.live = false;
    this.#retire(r);
    this.#stats.reallocs++;
    this.#counted(size - r.size, 0);
    return this.#view(offset, size, 16);
  }

  usableSize(view: Uint8Array): number {
    this.#alive('usableSize');
    return this.#port.usableSize(this.#record(view, 'usableSize').offset);
  }

  offsetOf(view: Uint8Array): number {
    this.#alive('offsetOf');
    return this.#record(view, 'offsetOf').offset;
  }

  stats(): HeapStats {
    const p = this.pages;
    return {
      ...this.#stats,
      bytesMapped: p.bytesMapped,
      peakBytesMapped: p.peakBytesMapped,
      pageMaps: p.mapCalls,
      pageUnmaps: p.unmapCalls,
      pageRemaps: 0, // the arena page source has no resize_page and no cache
      bytesCached: 0,
      cacheHits: 0,
      cacheMisses: 0,
      bytesReleased: 0,
      bytesPrefaulted: 0,
      finalized: 0,
      threadCacheHits: 0, // the thread cache is a native layer
      threadCacheMisses: 0,
      threadCacheFlushes: 0,
      threadCacheBytes: 0,
      threadCacheDoubleFrees: 0,
      threadCacheArenas: 0,
      threadCacheTransfers: 0,
    };
  }

  check(): void {
    this.#alive('check');
    const broken = this.#port.check();
    if (broken > 0) throw new HeapCorruptionError(`heap.check: the ${this.kind} heap (ts) is corrupt`, [`the heap walker counted ${broken} broken invariant(s)`]);
  }

  walk(): HeapWalk {
    this.#alive('walk');
    const builder = new WalkBuilder();
    this.#port.walk(builder);
    const w = builder.build();
    const asked = new Map(this.#live.map((b) => [b.offset, b.size] as const));
    const requested = new Float64Array(w.start.length).fill(Number.NaN);
    for (let i = 0; i < w.start.length; i++) {
      const r = w.state[i] === WalkState.used ? asked.get(w.payload[i]!) : undefined;
      if (r !== undefined) requested[i] = r;
    }
    return heapWalk(w, requested, 0, this.pages.pageSize);
  }

  destroy(): void {
    if (this.#destroyed) this.#alive('destroy');
    this.#destroyed = true;
    if (this.pages.buffer.byteLength === 0) return; // detached already: nothing left to give back
    this.#port.destroy();
    binding.detachArrayBuffer(this.pages.buffer); // every old view now reads as empty
  }

  [Symbol.dispose](): void {
    if (!this.#destroyed) this.destroy();
  }
}

/** The largest page of a ts heap: a sixteenth of the largest space, so a heap holds more than a few pages. */
const MAX_PORT_PAGE = 2 ** Math.floor(Math.log2(MAX_RESERVE / 16));

/** A heap of the TypeScript port of `kind`, over its own ArenaPages. */
export function createPortHeap(kind: AllocatorKind, limit: number, pageSize: number): PortHeap {
  const factory = portFactories[kind];
  if (!factory) throw new UnknownAllocatorError(`There is no TypeScript port of ${kind} in this build`);
  const page = pageSize || 4096;
  if (page < 4096 || page > MAX_PORT_PAGE || (page & (page - 1)) !== 0) {
    throw new InvalidArgumentError(`Expected a power of two from 4096 to ${MAX_PORT_PAGE} for pageSize (ts engine) but received ${pageSize}`);
  }
  const pages = new ArenaPages(page, limit ? Math.min(Math.max(limit, 1 << 20), DEFAULT_RESERVE) + page : DEFAULT_RESERVE, limit);
  markAsUntransferable(pages.buffer);
  const port = factory(pages);
  if (!port) throw new OutOfMemoryError(`createHeap(${JSON.stringify(kind)}, { engine: 'ts' }): the page source refused the first pages`);
  return new PortBackedHeap(kind, pages, port);
}
