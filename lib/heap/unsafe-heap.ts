/**
 * The fast path from JS: `createUnsafeHeap(kind)`, a C heap whose blocks are
 * plain `Uint8Array` views over ONE external ArrayBuffer that spans the heap's
 * whole address space (the arena page source), so an allocation makes no
 * ArrayBuffer, no finalizer and no weak reference: one call into the addon and
 * one view.
 *
 * What it gives up, and why the name says "unsafe" (as `Buffer.allocUnsafe` does):
 *
 *   - `free` does not detach the view: a view kept after `free` still reads and
 *     writes memory the heap will hand out again (a use after free, as in C);
 *   - `view.buffer` is the whole region, allocator metadata included: a write
 *     through `new Uint8Array(view.buffer)` outside a live block can corrupt the
 *     C heap, and a corrupt C heap can crash the process;
 *   - a new block's bytes are whatever the heap last held there (as
 *     `Buffer.allocUnsafe`'s are), unless `{ zero: true }`: the arena does not
 *     clear pages it hands out again, which at 1 MiB was most of the cost;
 *   - a view dropped without `free` is never reclaimed (no finalizer);
 *   - memory goes back to the system at `destroy()` (the arena keeps freed pages).
 *
 * What it keeps: every `free`/`realloc`/`usableSize` is checked against the
 * heap's own map of live block starts, so a double free, an interior pointer, a
 * subarray, or another heap's view is a coded error and never reaches the
 * allocator; sizes and alignments are validated as in `createHeap`; `destroy()`
 * detaches the region, so no view of a destroyed heap reaches unmapped memory.
 */
import { binding, type NativeHeap } from '../addon/native.js';
import type { NativeRegion } from '../../binding.js';
import { refuseCloning } from './not-cloneable.js';
import { heapWalk, type HeapWalk } from '../walk.js';
import { DestroyedError, ForeignBufferError, HeapCorruptionError, Status, UnknownAllocatorError, statusError } from '../errors.js';
import { type AllocatorKind, allocatorKinds } from '../kinds.js';
import { checkAlignment, checkBoolean, checkByteCount, checkOptions, checkSize, describe } from '../validate.js';
import type { AllocOptions, HeapStats } from './types.js';

export interface UnsafeHeapOptions {
  /** Bytes of address space (and most bytes mapped); default 1 GiB. */
  limit?: number;
  /** Page size, a power of two ≥ 4096 (default: the system's). */
  pageSize?: number;
}

export interface UnsafeHeap {
  readonly kind: AllocatorKind;
  readonly destroyed: boolean;
  /** The one ArrayBuffer every block is a view of (the heap's whole address space). */
  readonly region: ArrayBuffer;
  /** A view of `size` bytes at the block's offset in `region`. */
  alloc(size: number, options?: Omit<AllocOptions, 'label'>): Uint8Array;
  /** Frees the block; the view is NOT detached (see the module's notes). */
  free(view: Uint8Array): void;
  /** Resizes, keeping the contents; returns the new view (16-byte aligned, as C realloc). On failure the old view stays valid. */
  realloc(view: Uint8Array, size: number): Uint8Array;
  usableSize(view: Uint8Array): number;
  /** The block's offset in `region` (its address, minus the region's base). */
  offsetOf(view: Uint8Array): number;
  stats(): HeapStats;
  /** Walks the C heap; throws HeapCorruptionError if it is broken. */
  check(): void;
  /** The design's walk: every piece of the region the heap holds (lib/heap/walk.ts). */
  walk(): HeapWalk;
  /** Frees everything and detaches `region`: every view then reads as empty. */
  destroy(): void;
  [Symbol.dispose](): void;
}

class RegionHeap implements UnsafeHeap {
  readonly kind: AllocatorKind;
  readonly region: ArrayBuffer;
  readonly #native: NativeHeap;
  readonly #alloc: (size: number, align?: number, zero?: boolean) => number;
  readonly #free: NativeRegion['free'];
  #destroyed = false;

  constructor(kind: AllocatorKind, native: NativeHeap, region: NativeRegion) {
    this.kind = kind;
    this.#native = native;
    this.region = region.buffer;
    this.#alloc = region.alloc;
    this.#free = region.free;
    refuseCloning(this, "an unsafe heap is one thread's: post copies of blocks (view.slice())");
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  #alive(method: string): void {
    if (this.#destroyed) throw new DestroyedError(`heap.${method}: this ${this.kind} heap was destroyed`);
  }

  #offset(view: unknown, method: string): number {
    if (!(view instanceof Uint8Array) || view.buffer !== this.region) {
      throw new ForeignBufferError(`heap.${method}: expected a view from this heap's alloc but received ${describe(view)}`);
    }
    return view.byteOffset;
  }

  alloc(size: number, options?: Omit<AllocOptions, 'label'>): Uint8Array {
    // the hot path passes size straight to the addon, which validates it (and
    // knows whether the heap was destroyed); the errors are made here
    if (options === undefined) {
      const offset = this.#alloc(size);
      if (offset >= 0) return new Uint8Array(this.region, offset, size);
      throw this.#allocError(-offset, size);
    }
    this.#alive('alloc');
    checkSize(size);
    const opts = checkOptions(options, 'alloc options', ['align', 'zero']);
    const align = opts.align === undefined ? 16 : checkAlignment(opts.align);
    const zero = opts.zero === undefined ? false : checkBoolean(opts.zero, 'zero');
    const offset = this.#alloc(size, align, zero);
    if (offset < 0) throw this.#allocError(-offset, size);
    return new Uint8Array(this.region, offset, size);
  }

  #allocError(status: number, size: unknown): Error {
    this.#alive('alloc');
    if (status === Status.invalidSize) checkSize(size); // throws, with what was wrong
    return statusError(status, `heap.alloc(${String(size)})`);
  }

  free(view: Uint8Array): void {
    // the addon finds the block by the view's address: only a view that starts a
    // live block of this region frees anything
    const status = this.#free(view);
    if (status === Status.ok) return;
    this.#alive('free');
    if (status === Status.foreign && !(view instanceof Uint8Array)) {
      throw new ForeignBufferError(`heap.free: expected a view from this heap's alloc but received ${describe(view)}`);
    }
    throw freeError(status, 'heap.free');
  }

  realloc(view: Uint8Array, size: number): Uint8Array {
    this.#alive('realloc');
    const offset = this.#offset(view, 'realloc');
    checkSize(size);
    const moved = this.#native.reallocAt(offset, view.byteLength, size);
    if (moved < 0) throw freeError(-moved, `heap.realloc(${size})`);
    return new Uint8Array(this.region, moved, size);
  }

  usableSize(view: Uint8Array): number {
    this.#alive('usableSize');
    const n = this.#native.usableAt(this.#offset(view, 'usableSize'));
    if (n < 0) throw freeError(-n, 'heap.usableSize');
    return n;
  }

  offsetOf(view: Uint8Array): number {
    this.#alive('offsetOf');
    const offset = this.#offset(view, 'offsetOf');
    if (this.#native.usableAt(offset) < 0) throw freeError(Status.notLive, 'heap.offsetOf');
    return offset;
  }

  stats(): HeapStats {
    return this.#native.stats();
  }

  check(): void {
    this.#alive('check');
    const result = this.#native.check();
    if (typeof result === 'number') throw statusError(result, 'heap.check');
    if (result.invariants > 0) {
      throw new HeapCorruptionError(`heap.check: the ${this.kind} heap is corrupt`, [`the heap walker counted ${result.invariants} broken invariant(s)`]);
    }
  }

  /** The design's walk (offsets in `region`); a view's request is not known here (NaN). */
  walk(): HeapWalk {
    this.#alive('walk');
    const w = this.#native.walk();
    if (typeof w === 'number') throw statusError(w, 'heap.walk');
    return heapWalk(w, w.requested, w.base, w.pageSize);
  }

  destroy(): void {
    this.#alive('destroy');
    this.#destroyed = true;
    this.#native.destroy();
  }

  [Symbol.dispose](): void {
    if (!this.#destroyed) this.destroy();
  }
}

/** A not-live offset is a view that does not start a live block: freed already, or never one. */
function freeError(status: number, what: string) {
  if (status === Status.notLive) {
    return statusError(status, `${what}: the view does not start a live block of this heap (freed already, a subarray, or never a block)`);
  }
  if (status === Status.foreign) return new ForeignBufferError(`${what}: the view is longer than its block`);
  return statusError(status, what);
}

/**
 * A C heap with the fast, unchecked-view path (see the module's notes for what
 * it gives up).
 *
 * ```ts
 * const heap = createUnsafeHeap('tlsf');
 * const view = heap.alloc(64);   // a Uint8Array over heap.region
 * heap.free(view);               // view still reads the region: do not use it
 * ```
 */
export function createUnsafeHeap(kind: AllocatorKind, options?: UnsafeHeapOptions): UnsafeHeap {
  if (typeof kind !== 'string' || !(allocatorKinds as readonly string[]).includes(kind)) {
    throw new UnknownAllocatorError(`Expected one of ${allocatorKinds.join(', ')} for kind but received ${describe(kind)}`);
  }
  const opts = checkOptions(options, 'createUnsafeHeap options', ['limit', 'pageSize']);
  const limit = opts.limit === undefined ? 0 : checkByteCount(opts.limit, 'limit');
  const pageSize = opts.pageSize === undefined ? 0 : checkByteCount(opts.pageSize, 'pageSize');
  const native = new binding.NativeHeap(kind, limit, pageSize, 'arena');
  const status = native.status();
  if (status !== Status.ok) throw statusError(status, `createUnsafeHeap(${JSON.stringify(kind)})`);
  const region = native.region();
  if (typeof region === 'number') {
    native.destroy();
    throw statusError(region, `createUnsafeHeap(${JSON.stringify(kind)})`);
  }
  return new RegionHeap(kind, native, region);
}
