/**
 * What every port exposes: the C allocator table (native/allocator.h) over offsets
 * in an ArenaPages address space instead of pointers. 0 is NULL.
 */
import type { ArenaPages } from '../pages/arena.js';
import type { WalkBuilder } from '../walk.js';

export interface PortAllocator {
  readonly name: string;
  malloc(size: number): number;
  /** `align` is a power of two. */
  memalign(align: number, size: number): number;
  realloc(ptr: number, size: number): number;
  calloc(count: number, size: number): number;
  free(ptr: number): void;
  usableSize(ptr: number): number;
  /** Broken invariants found by walking the whole heap (0 = sound). */
  check(): number;
  /** Every piece of memory the heap holds, in the order and with the values its C walker reports (lib/heap/walk.ts). */
  walk(out: WalkBuilder): void;
  /** Gives every page back. */
  destroy(): void;
  /**
   * Byte ranges [offset, length] of fields that the C original fills with host
   * process pointers (its copy of, or pointer to, the hooks). The port leaves them
   * zero and the differential comparison skips them; everything else must match.
   */
  hostBytes(): Array<[number, number]>;
}

/** Creates a port heap over `pages`, like hl_allocator.create; null if the first pages cannot be had. */
export type PortFactory = (pages: ArenaPages) => PortAllocator | null;
