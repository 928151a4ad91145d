/**
 * Every error heaplab throws is a HeaplabError with a string `code`. The addon
 * answers with integer statuses; `statusError` turns one into its error class.
 */

export type HeaplabErrorCode =
  | 'ERR_HEAPLAB_INVALID_SIZE'
  | 'ERR_HEAPLAB_INVALID_ALIGNMENT'
  | 'ERR_HEAPLAB_INVALID_ARGUMENT'
  | 'ERR_HEAPLAB_OUT_OF_MEMORY'
  | 'ERR_HEAPLAB_DOUBLE_FREE'
  | 'ERR_HEAPLAB_FOREIGN_BUFFER'
  | 'ERR_HEAPLAB_DESTROYED'
  | 'ERR_HEAPLAB_DETACHED'
  | 'ERR_HEAPLAB_CORRUPT'
  | 'ERR_HEAPLAB_UNKNOWN_ALLOCATOR'
  | 'ERR_HEAPLAB_UNSUPPORTED'
  | 'ERR_HEAPLAB_PRELOAD_NOT_FOUND'
  | 'ERR_HEAPLAB_ADDON_NOT_FOUND'
  | 'ERR_HEAPLAB_TRACE_FORMAT'
  | 'ERR_HEAPLAB_CHILD_PROCESS'
  | 'ERR_HEAPLAB_USAGE';

export class HeaplabError extends Error {
  readonly code: HeaplabErrorCode;
  constructor(code: HeaplabErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A size that is not a non-negative safe integer, or beyond what the allocator can serve. */
export class InvalidSizeError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_INVALID_SIZE', message); }
}
/** An alignment that is not a power of two within range. */
export class InvalidAlignmentError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_INVALID_ALIGNMENT', message); }
}
/** Any other argument of the wrong type or value (an unknown option, a bad limit). */
export class InvalidArgumentError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_INVALID_ARGUMENT', message); }
}
/** The heap's page source refused more pages (its limit, or the system). */
export class OutOfMemoryError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_OUT_OF_MEMORY', message); }
}
/** The buffer was a block of this heap, but it was freed (or reallocated) already. */
export class DoubleFreeError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_DOUBLE_FREE', message); }
}
/** The value is not a block this heap handed out: another heap's, a subarray, a copy. */
export class ForeignBufferError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_FOREIGN_BUFFER', message); }
}
/** The heap was destroyed; nothing can be done with it any more. */
export class DestroyedError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_DESTROYED', message); }
}
/**
 * A ts-engine heap's memory (its one ArrayBuffer) was detached by someone else,
 * e.g. `buffer.transfer()` on Node 21+: its blocks are gone with it, and the heap
 * cannot go on. (postMessage and structuredClone copy it instead: it is marked
 * untransferable.)
 */
export class HeapDetachedError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_DETACHED', message); }
}
/** What debug mode (`createHeap(kind, { debug: true })`) found wrong with one block. */
export interface HeapFinding {
  /**
   * overflow: bytes after the block's end were written (its canary is damaged);
   * use-after-free: a freed block was written while held in the quarantine;
   * bad-magic: the block's header was overwritten (a write before its start);
   * double-free: a block freed twice (native code only: JS double frees are
   * DoubleFreeError before they reach the allocator).
   */
  readonly kind: 'overflow' | 'use-after-free' | 'bad-magic' | 'double-free';
  /** Bytes the block was asked for (0 when its header is unreadable). */
  readonly size: number;
  /** Who asked for it: the `label` given to alloc, or the first caller outside heaplab ("parse() at app.js:12"). */
  readonly requester: string;
  /** First wrong byte: from the block's start (use-after-free), or past its end (overflow). */
  readonly offset: number;
  /** One sentence: "a 48-byte block requested by parse() at app.js:12 was written past its end". */
  readonly message: string;
}

/**
 * The heap is corrupt: the heap checker found broken invariants, or (debug mode)
 * `free` or `check` found a block written past its end or after it was freed.
 * `problems` lists every problem as a sentence; `findings` has the debug-mode
 * ones in structured form. A `free` that throws this has still freed the block.
 */
export class HeapCorruptionError extends HeaplabError {
  readonly problems: readonly string[];
  readonly findings: readonly HeapFinding[];
  constructor(message: string, problems: readonly string[], findings: readonly HeapFinding[] = []) {
    super('ERR_HEAPLAB_CORRUPT', `${message}:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
    this.findings = findings;
  }
}
/** No allocator of that name in this build. */
export class UnknownAllocatorError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_UNKNOWN_ALLOCATOR', message); }
}
/** The runtime refuses something heaplab needs (e.g. external buffers under a V8 sandbox). */
export class UnsupportedError extends HeaplabError {
  constructor(message: string) { super('ERR_HEAPLAB_UNSUPPORTED', message); }
}

/** The native addon could not be loaded (the message says what was tried and how to build it). */
export class AddonNotFoundError extends HeaplabError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_HEAPLAB_ADDON_NOT_FOUND', message);
    if (options && 'cause' in options) (this as { cause?: unknown }).cause = options.cause;
  }
}

/** @internal Statuses returned by the addon: `enum HlStatus` in native/node/node.h, exported by addon.cc as `statuses` (a test checks they agree). */
export const Status = {
  ok: 0,
  outOfMemory: 1,
  invalidSize: 2,
  invalidAlignment: 3,
  notLive: 4,
  destroyed: 5,
  externalBuffersRefused: 6,
  unknownAllocator: 7,
  invalidPageSize: 8,
  notDebug: 9,
  foreign: 10,
} as const;

/** @internal The error for a non-zero addon status; `what` says which call, for the message. */
export function statusError(status: number, what: string): HeaplabError {
  switch (status) {
    case Status.outOfMemory:
      return new OutOfMemoryError(`${what}: out of memory (the heap's page source refused more pages)`);
    case Status.invalidSize:
      return new InvalidSizeError(`${what}: the allocator cannot serve that size`);
    case Status.invalidAlignment:
      return new InvalidAlignmentError(`${what}: alignment must be a power of two`);
    case Status.notLive:
      return new DoubleFreeError(`${what}: the block was already freed`);
    case Status.destroyed:
      return new DestroyedError(`${what}: the heap was destroyed`);
    case Status.externalBuffersRefused:
      return new UnsupportedError(
        `${what}: this Node.js refuses external buffers (V8 sandbox build); heaplab cannot hand out allocator memory as Buffers here`,
      );
    case Status.foreign:
      return new ForeignBufferError(`${what}: the Buffer is not the block's own (a view over it, or a forged one)`);
    case Status.unknownAllocator:
      return new UnknownAllocatorError(`${what}: no such allocator in this build`);
    case Status.notDebug:
      return new InvalidArgumentError(`${what}: only a heap created with { debug: true } can do that`);
    case Status.invalidPageSize:
      return new InvalidArgumentError(`${what}: pageSize must be a power of two, at least 4096 and a multiple of the system page size`);
    default:
      return new HeaplabError('ERR_HEAPLAB_CORRUPT', `${what}: unexpected status ${status} from the addon`);
  }
}
