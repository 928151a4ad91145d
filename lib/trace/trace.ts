/**
 * A trace in memory: parallel typed arrays, one entry per operation (the
 * in-memory form of docs/trace-format.md): alloc(id, size, align), free(id),
 * realloc(id, size). A block keeps its id through realloc.
 *
 * `Op` is native/trace/trace.h's `enum hl_trace_op`; test/single-home.test.ts fails
 * if the two disagree.
 */

export const Op = { malloc: 1, calloc: 2, memalign: 3, realloc: 4, free: 5 } as const;
export type OpCode = (typeof Op)[keyof typeof Op];
/** The name of each op code: opNames[Op.free] === 'free'. */
export const opNames: Readonly<Record<number, keyof typeof Op>> = Object.fromEntries(
  Object.entries(Op).map(([name, code]) => [code, name]),
) as Record<number, keyof typeof Op>;

export interface Trace {
  name: string;
  op: Uint8Array;
  id: Uint32Array;
  size: Float64Array;
  alignLog2: Uint8Array;
  /** Every id is at most this. */
  maxId: number;
  /** Byte limit the trace is meant to run under (0: none); out-of-memory traces set it. */
  limit: number;
}

/** Builds a trace one operation at a time. */
export class TraceBuilder {
  #op: number[] = [];
  #id: number[] = [];
  #size: number[] = [];
  #align: number[] = [];
  #nextId = 0;

  get length(): number {
    return this.#op.length;
  }

  alloc(size: number, alignLog2 = 4, zero = false): number {
    const id = this.#nextId++;
    this.#push(alignLog2 > 4 ? Op.memalign : zero ? Op.calloc : Op.malloc, id, size, alignLog2);
    return id;
  }
  realloc(id: number, size: number): void {
    this.#push(Op.realloc, id, size, 4);
  }
  free(id: number): void {
    this.#push(Op.free, id, 0, 4);
  }

  #push(op: number, id: number, size: number, alignLog2: number): void {
    this.#op.push(op);
    this.#id.push(id);
    this.#size.push(size);
    this.#align.push(alignLog2);
  }

  build(name: string, limit = 0): Trace {
    return {
      name,
      op: Uint8Array.from(this.#op),
      id: Uint32Array.from(this.#id),
      size: Float64Array.from(this.#size),
      alignLog2: Uint8Array.from(this.#align),
      maxId: Math.max(0, this.#nextId - 1),
      limit,
    };
  }
}


/** Cuts a trace to its first `max` operations (blocks still live are freed by the replay's release). */
export function truncateTrace(trace: Trace, max: number): Trace {
  if (trace.op.length <= max) return trace;
  const op = trace.op.subarray(0, max);
  let maxId = 0;
  const id = trace.id.subarray(0, max);
  for (let i = 0; i < max; i++) if (id[i]! > maxId) maxId = id[i]!;
  return { ...trace, op, id, size: trace.size.subarray(0, max), alignLog2: trace.alignLog2.subarray(0, max), maxId };
}
