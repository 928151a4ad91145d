/**
 * Debug mode on the JS side: who asked for a block, and sentences for what the
 * native debug layer (native/debug/debug.h) found.
 *
 * The C layer records a requester per block as an opaque number; here that
 * number indexes a table of strings: the `label` given to `alloc`, or the first
 * stack frame outside heaplab ("parse() at app.js:12"), captured only when a
 * heap is in debug mode.
 */
import { relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeDebugOptions, NativeFinding } from '../../binding.js';
import { HeapCorruptionError, type HeapFinding } from '../errors.js';
import { packageRoot } from '../util/package-root.js';
import { checkIntegerIn, checkOptions } from '../validate.js';

/** `createHeap(kind, { debug })`: `true` for the defaults, or these settings. */
export interface DebugOptions {
  /** Freed blocks held back before they really go back, so writes after free show (default 256; 0: none). */
  quarantine?: number;
  /** Most bytes the quarantine holds (default 4 MiB). */
  quarantineBytes?: number;
  /** Run a full check every N heap operations (default 0: only on `check()`). */
  checkEvery?: number;
}

export const debugDefaults: NativeDebugOptions = { quarantine: 256, quarantineBytes: 4 << 20, checkEvery: 0 };

function count(value: unknown, name: string, fallback: number): number {
  return checkIntegerIn(value, `debug.${name}`, 0, 2 ** 32, fallback, '2**32');
}

/** The native settings for a `debug` option, or null when debug mode is off. */
export function checkDebugOptions(value: unknown): NativeDebugOptions | null {
  if (value === undefined || value === false) return null;
  if (value === true) return { ...debugDefaults };
  const o = checkOptions(value, 'debug options', ['quarantine', 'quarantineBytes', 'checkEvery']);
  return {
    quarantine: count(o.quarantine, 'quarantine', debugDefaults.quarantine),
    quarantineBytes: count(o.quarantineBytes, 'quarantineBytes', debugDefaults.quarantineBytes),
    checkEvery: count(o.checkEvery, 'checkEvery', debugDefaults.checkEvery),
  };
}

const ownDirs = [`${packageRoot}${sep}lib${sep}`, `${packageRoot}${sep}dist${sep}`];

function pathOf(file: string): string {
  if (file.startsWith('file://')) {
    try {
      return fileURLToPath(file);
    } catch {
      return file;
    }
  }
  return file;
}

/** "parse() at app.js:12": the first frame of the current stack outside heaplab. */
export function callerFrame(): string {
  const savedPrepare = Error.prepareStackTrace;
  const savedLimit = Error.stackTraceLimit;
  let frames: NodeJS.CallSite[] = [];
  try {
    Error.stackTraceLimit = 12;
    Error.prepareStackTrace = (_error, callSites) => callSites;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, callerFrame);
    if (Array.isArray(holder.stack)) frames = holder.stack as NodeJS.CallSite[];
  } finally {
    Error.prepareStackTrace = savedPrepare;
    Error.stackTraceLimit = savedLimit;
  }
  for (const frame of frames) {
    const raw = frame.getFileName() ?? frame.getScriptNameOrSourceURL?.() ?? '';
    const file = pathOf(raw);
    if (!file || ownDirs.some((d) => file.startsWith(d))) continue;
    const name = frame.getFunctionName() ?? frame.getMethodName();
    const rel = relative(process.cwd(), file);
    const shown = file.startsWith('node:') || !rel || rel.startsWith('..') ? file : rel;
    return `${name ? `${name}()` : 'top-level code'} at ${shown}:${frame.getLineNumber() ?? 0}`;
  }
  return 'an unknown caller';
}

/** Requester strings by id (0 is "unknown"); one id per distinct string. */
export class RequesterTable {
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = ['an unknown caller'];

  id(requester: string): number {
    let id = this.#ids.get(requester);
    if (id === undefined) {
      id = this.#names.length;
      this.#names.push(requester);
      this.#ids.set(requester, id);
    }
    return id;
  }

  name(id: number): string {
    return this.#names[id] ?? 'an unknown caller';
  }
}

const verbs: Record<NativeFinding['kind'], string> = {
  overflow: 'was written past its end',
  'use-after-free': 'was written after it was freed',
  'bad-magic': 'had its header overwritten (a write before its start)',
  'double-free': 'was freed twice',
};

export function describeFinding(f: NativeFinding, requesters: RequesterTable): HeapFinding {
  const requester = requesters.name(f.requester);
  // overflow: the canary byte hit, counted from the block's start; use-after-free: the byte written
  const at = f.kind === 'overflow' ? f.size + f.offset : f.offset;
  const where = f.kind === 'overflow' || f.kind === 'use-after-free' ? ` (at byte ${at})` : '';
  const block = f.size || f.kind !== 'bad-magic' ? `a ${f.size}-byte block` : 'a block';
  const by = f.requester || f.kind !== 'bad-magic' ? ` requested by ${requester}` : '';
  return {
    kind: f.kind,
    size: f.size,
    requester,
    offset: f.offset,
    message: `${block}${by} ${verbs[f.kind]}${where}`,
  };
}

/** The error for a list of native findings, or null when there is none. */
export function findingsError(what: string, kind: string, found: readonly NativeFinding[], requesters: RequesterTable): HeapCorruptionError | null {
  if (!found.length) return null;
  const findings = found.map((f) => describeFinding(f, requesters));
  return new HeapCorruptionError(`${what}: debug mode found ${found.length === 1 ? 'a corrupt block' : `${found.length} corrupt blocks`} in the ${kind} heap`, findings.map((f) => f.message), findings);
}
