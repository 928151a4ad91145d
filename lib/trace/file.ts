/**
 * Reads the binary traces the preload libraries record with HEAPLAB_TRACE=FILE
 * (docs/trace-format.md, native/trace/trace.h) into the in-memory form the replays use
 * (a `Trace` of parallel typed arrays, ./trace.ts), and summarises them.
 */
import { closeSync, fstatSync, openSync, readSync, readdirSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HeaplabError } from '../errors.js';
import { Op, type Trace } from './trace.js';


export const TRACE_MAGIC = 'HLTRACE';
export const TRACE_VERSION = 1;
export const TRACE_HEADER_BYTES = 64;
export const TRACE_RECORD_BYTES = 16;
/** Header flag: the file is FILE.<pid> of a program the traced program ran. */
export const TRACE_FLAG_DESCENDANT = 1;

export interface TraceHeader {
  version: number;
  /** The process that wrote the file, and its parent. */
  pid: number;
  ppid: number;
  flags: number;
  /** True for FILE.<pid>: a program run by the traced program (HL_TRACE_FLAG_DESCENDANT). */
  descendant: boolean;
  /** The allocator the program ran on ("tlsf", ...). */
  allocator: string;
  /** The program's short name (at most 15 characters). */
  program: string;
}

/** A recorded trace: the replayable `Trace`, plus who recorded it and on which thread each call ran. */
export interface RecordedTrace extends Trace {
  header: TraceHeader;
  /** Thread index of each operation: 0 for the first thread that allocated, 1 for the next... */
  thread: Uint16Array;
  /** Bytes at the end that were not whole records, or zero records (a writer that exec'd or was killed). */
  droppedBytes: number;
}

/** The file is not a heaplab trace, or is damaged. */
export class TraceFormatError extends HeaplabError {
  constructor(message: string) {
    super('ERR_HEAPLAB_TRACE_FORMAT', message);
  }
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function parseHeader(path: string, bytes: Uint8Array): TraceHeader {
  if (bytes.length < TRACE_HEADER_BYTES) throw new TraceFormatError(`${path}: ${bytes.length} bytes, shorter than a trace header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, TRACE_HEADER_BYTES);
  const magic = cString(bytes.subarray(0, 8));
  if (magic !== TRACE_MAGIC) throw new TraceFormatError(`${path}: not a heaplab trace (magic ${JSON.stringify(magic)})`);
  const version = view.getUint32(8, true);
  if (version !== TRACE_VERSION) throw new TraceFormatError(`${path}: trace version ${version}, this reader knows ${TRACE_VERSION}`);
  const recordSize = view.getUint32(12, true);
  if (recordSize !== TRACE_RECORD_BYTES) throw new TraceFormatError(`${path}: record size ${recordSize}, expected ${TRACE_RECORD_BYTES}`);
  const flags = view.getUint32(24, true);
  return {
    version,
    pid: view.getUint32(16, true),
    ppid: view.getUint32(20, true),
    flags,
    descendant: (flags & TRACE_FLAG_DESCENDANT) !== 0,
    allocator: cString(bytes.subarray(32, 48)),
    program: cString(bytes.subarray(48, 64)),
  };
}

/** Reads the header only. */
export function readTraceHeader(path: string): TraceHeader {
  const fd = openSync(path, 'r');
  try {
    const bytes = new Uint8Array(TRACE_HEADER_BYTES);
    const n = readSync(fd, bytes, 0, TRACE_HEADER_BYTES, 0);
    return parseHeader(path, bytes.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

const CHUNK_RECORDS = 1 << 20;

/**
 * Reads a whole trace file. Records are read in chunks straight into the typed
 * arrays, so a trace of tens of millions of calls does not need twice its size
 * in memory. Throws TraceFormatError for a file that is not a valid trace.
 */
export function readTrace(path: string): RecordedTrace {
  const fd = openSync(path, 'r');
  try {
    const fileBytes = fstatSync(fd).size;
    const head = new Uint8Array(TRACE_HEADER_BYTES);
    const got = readSync(fd, head, 0, TRACE_HEADER_BYTES, 0);
    const header = parseHeader(path, head.subarray(0, got));
    const capacity = Math.floor((fileBytes - TRACE_HEADER_BYTES) / TRACE_RECORD_BYTES);
    const op = new Uint8Array(capacity);
    const id = new Uint32Array(capacity);
    const size = new Float64Array(capacity);
    const alignLog2 = new Uint8Array(capacity);
    const thread = new Uint16Array(capacity);
    const chunk = new Uint8Array(CHUNK_RECORDS * TRACE_RECORD_BYTES);
    const view = new DataView(chunk.buffer);
    let count = 0; // records read
    let used = 0; // records up to the last non-zero one
    let maxId = 0;
    let position = TRACE_HEADER_BYTES;
    while (count < capacity) {
      const want = Math.min(CHUNK_RECORDS, capacity - count) * TRACE_RECORD_BYTES;
      let filled = 0;
      while (filled < want) {
        const n = readSync(fd, chunk, filled, want - filled, position + filled);
        if (n === 0) break;
        filled += n;
      }
      const records = Math.floor(filled / TRACE_RECORD_BYTES);
      if (records === 0) break;
      for (let r = 0; r < records; r++, count++) {
        const at = r * TRACE_RECORD_BYTES;
        const code = view.getUint8(at + 4);
        if (code === 0) {
          // zero records only ever end a file (an unfinished last window)
          continue;
        }
        if (code > Op.free) {
          throw new TraceFormatError(`${path}: record ${count} has unknown operation ${code}`);
        }
        if (used !== count) {
          throw new TraceFormatError(`${path}: record ${used} is zero but record ${count} is not: the file is damaged`);
        }
        const blockId = view.getUint32(at, true);
        op[count] = code;
        id[count] = blockId;
        alignLog2[count] = view.getUint8(at + 5);
        thread[count] = view.getUint16(at + 6, true);
        size[count] = view.getUint32(at + 8, true) + view.getUint32(at + 12, true) * 2 ** 32;
        if (blockId > maxId) maxId = blockId;
        used = count + 1;
      }
      position += records * TRACE_RECORD_BYTES;
    }
    return {
      name: basename(path),
      op: op.subarray(0, used),
      id: id.subarray(0, used),
      size: size.subarray(0, used),
      alignLog2: alignLog2.subarray(0, used),
      thread: thread.subarray(0, used),
      maxId,
      limit: 0,
      header,
      droppedBytes: fileBytes - TRACE_HEADER_BYTES - used * TRACE_RECORD_BYTES,
    };
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `trace` in the same format the preload libraries record (the one trace
 * file format), so that every reader of traces reads one kind of file. `who`
 * fills the header's allocator and program fields (cut to 15 bytes); every
 * record is thread 0.
 */
export function writeTrace(path: string, trace: Trace, who: { allocator?: string; program?: string } = {}): void {
  const head = new Uint8Array(TRACE_HEADER_BYTES);
  const hv = new DataView(head.buffer);
  const text = new TextEncoder();
  head.set(text.encode(TRACE_MAGIC), 0);
  hv.setUint32(8, TRACE_VERSION, true);
  hv.setUint32(12, TRACE_RECORD_BYTES, true);
  hv.setUint32(16, process.pid, true);
  hv.setUint32(20, process.ppid, true);
  head.set(text.encode(who.allocator ?? '').subarray(0, 15), 32);
  head.set(text.encode(who.program ?? trace.name).subarray(0, 15), 48);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head);
    const n = trace.op.length;
    const chunk = new Uint8Array(Math.min(n, CHUNK_RECORDS) * TRACE_RECORD_BYTES);
    const view = new DataView(chunk.buffer);
    for (let start = 0; start < n; start += CHUNK_RECORDS) {
      const end = Math.min(n, start + CHUNK_RECORDS);
      for (let i = start; i < end; i++) {
        const at = (i - start) * TRACE_RECORD_BYTES;
        const size = trace.size[i]!;
        view.setUint32(at, trace.id[i]!, true);
        view.setUint8(at + 4, trace.op[i]!);
        view.setUint8(at + 5, trace.alignLog2[i]!);
        view.setUint16(at + 6, 0, true);
        view.setUint32(at + 8, size % 2 ** 32, true);
        view.setUint32(at + 12, Math.floor(size / 2 ** 32), true);
      }
      writeSync(fd, chunk, 0, (end - start) * TRACE_RECORD_BYTES);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The files one recording produced: FILE itself, and FILE.<pid> for each
 * program the traced program ran (see docs/trace-format.md). FILE first, the
 * others by pid.
 */
export function traceFiles(path: string): string[] {
  const dir = dirname(path);
  const base = basename(path);
  const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)$`);
  const others = readdirSync(dir)
    .map((name) => ({ name, m: pattern.exec(name) }))
    .filter((e) => e.m)
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((e) => join(dir, e.name));
  return [path, ...others];
}

export interface TraceSummary {
  operations: number;
  /** Operations by kind: malloc, calloc, memalign, realloc, free. */
  byOp: Record<'malloc' | 'calloc' | 'memalign' | 'realloc' | 'free', number>;
  /** Sizes asked by malloc, calloc, memalign and realloc (NaN when there are none). */
  sizeMin: number;
  sizeMedian: number;
  sizeMax: number;
  /** The most bytes live at once (sizes as asked, not as rounded by the allocator). */
  peakLiveBytes: number;
  peakLiveBlocks: number;
  /** Blocks still allocated when the recording ended. */
  liveBlocksAtEnd: number;
  threads: number;
}

export function summarizeTrace(trace: Trace & { thread?: Uint16Array }): TraceSummary {
  const n = trace.op.length;
  const byOp = { malloc: 0, calloc: 0, memalign: 0, realloc: 0, free: 0 };
  const liveSize = new Float64Array(trace.maxId + 1);
  const sizes = new Float64Array(n);
  let sized = 0;
  let live = 0;
  let liveBlocks = 0;
  let peak = 0;
  let peakBlocks = 0;
  const threads = new Set<number>();
  for (let i = 0; i < n; i++) {
    const code = trace.op[i]!;
    const block = trace.id[i]!;
    const bytes = trace.size[i]!;
    switch (code) {
      case Op.malloc:
      case Op.calloc:
      case Op.memalign:
        byOp[code === Op.malloc ? 'malloc' : code === Op.calloc ? 'calloc' : 'memalign']++;
        liveSize[block] = bytes;
        live += bytes;
        liveBlocks++;
        sizes[sized++] = bytes;
        break;
      case Op.realloc:
        byOp.realloc++;
        live += bytes - liveSize[block]!;
        liveSize[block] = bytes;
        sizes[sized++] = bytes;
        break;
      case Op.free:
        byOp.free++;
        live -= liveSize[block]!;
        liveSize[block] = 0;
        liveBlocks--;
        break;
    }
    if (live > peak) peak = live;
    if (liveBlocks > peakBlocks) peakBlocks = liveBlocks;
    if (trace.thread) threads.add(trace.thread[i]!);
  }
  const sorted = sizes.subarray(0, sized).sort();
  return {
    operations: n,
    byOp,
    sizeMin: sized ? sorted[0]! : NaN,
    sizeMedian: sized ? sorted[Math.floor((sized - 1) / 2)]! : NaN,
    sizeMax: sized ? sorted[sized - 1]! : NaN,
    peakLiveBytes: peak,
    peakLiveBlocks: peakBlocks,
    liveBlocksAtEnd: liveBlocks,
    threads: trace.thread ? threads.size : 1,
  };
}
