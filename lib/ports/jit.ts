/**
 * V8's inlining budgets in the processes that time the ports (`heaplab compare`,
 * `heaplab bench`).
 *
 * Each port mirrors its C function by function: many small ones (block_size,
 * list_remove, mapping_insert …), which gcc inlines at -O2. TurboFan inlines the
 * callees of a function it optimizes only up to a cumulative 920 bytes of their
 * bytecode (`--max-inlined-bytecode-size-cumulative`), and never past 4600 bytes
 * in all (`--max-inlined-bytecode-size-absolute`). A port's malloc path alone
 * takes the first: `--trace-turbo-inlining` on the tlsf port shows the whole
 * malloc path inlined into the replay loop and free's (heap_free, list_remove,
 * block_insert) left as calls. Raised to 3000 alone, the second binds: perf on
 * tlsf's stack-bursts still found mapping_insert, list_remove, list_insert and
 * search_suitable_block as calls of their own (39% of the run), mapping_insert
 * taking its size as a tagged number and comparing it in doubles.
 *
 * Measured with `heaplab compare`'s timing (settled runs), medians of 3
 * interleaved runs of the TS/C geometric mean over its 20 short traces:
 *
 *   cumulative / absolute   tlsf   dlmalloc   liballoc
 *   920 / 4600 (V8's)       2.78   2.26       2.29      (an earlier session)
 *   3000 / 4600             1.94   1.74       1.73
 *   6000 / 20000            1.81   1.79       1.66
 *   10000 / 20000           1.75   1.75       1.54
 *
 * A third limit kept dlmalloc's core out: V8 inlines no function of more than
 * 460 bytes of bytecode (`--max-inlined-bytecode-size`), and `--trace-turbo-inlining`
 * names heap_alloc (829 bytes), trim_top (693), internal_realloc (593) and
 * unlink_large (544) "not inlineable" (kExceedsBytecodeLimit), so every dlmalloc
 * malloc was a call. Raised to 1200 (all 23 traces, `heaplab compare`'s
 * timing, medians of 3 interleaved runs): dlmalloc 1.61 -> 1.52, liballoc 1.48
 * -> 1.43, tlsf (no function that large) 1.59 -> 1.57.
 *
 * The flags are set before any port function is optimized (V8 reads them when it
 * optimizes), unless the process was started with either of its own, or
 * HEAPLAB_V8_DEFAULTS=1 asks for V8's defaults. A program that runs a port itself
 * can start node with the same flags; the library never changes its host's flags.
 * The flags are the whole process's: `heaplab bench` times its Node-API paths
 * before it sets them, under V8's own flags, as a program using heaplab runs them.
 */
import v8 from 'node:v8';

export const PORT_INLINE_BUDGET = 10000;
export const PORT_INLINE_LIMIT = 20000;
export const PORT_CALLEE_LIMIT = 1200;
const FLAG = '--max-inlined-bytecode-size-cumulative';
const LIMIT_FLAG = '--max-inlined-bytecode-size-absolute';
const CALLEE_FLAG = '--max-inlined-bytecode-size';
const V8_DEFAULT = 920;
const V8_DEFAULT_LIMIT = 4600;
const V8_DEFAULT_CALLEE = 460;

export interface PortJit {
  /** The cumulative inlining budget the ports run with, in bytes of bytecode. */
  inlineBudget: number;
  /** The most bytecode inlined into one optimized function, in bytes. */
  inlineLimit: number;
  /** The largest function V8 inlines, in bytes of its bytecode. */
  calleeLimit: number;
  /** Who chose them: heaplab, the process's own flags, or V8's defaults. */
  source: 'heaplab' | 'process' | 'v8-default';
}

/** A value node was started with for `flag` (`--flag=N` or `--flag N`, V8's `_` spelling too), if any. */
function given(flag: string): number | undefined {
  const args = process.execArgv.map((a) => a.replace(/_/g, '-')); /* node refuses these flags in NODE_OPTIONS */
  let value: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith(`${flag}=`)) value = Number(a.slice(flag.length + 1));
    else if (a === flag) value = Number(args[i + 1]);
  }
  return value; /* V8 keeps the last */
}

let tuned: PortJit | undefined;

/** Raises V8's inlining budgets for this process (once), and says what the ports run with. */
export function tuneJitForPorts(): PortJit {
  if (tuned) return tuned;
  const budget = given(FLAG);
  const limit = given(LIMIT_FLAG);
  const callee = given(CALLEE_FLAG);
  if (budget !== undefined || limit !== undefined || callee !== undefined) {
    tuned = {
      inlineBudget: budget ?? V8_DEFAULT,
      inlineLimit: limit ?? V8_DEFAULT_LIMIT,
      calleeLimit: callee ?? V8_DEFAULT_CALLEE,
      source: 'process',
    };
  } else if (process.env.HEAPLAB_V8_DEFAULTS === '1') {
    tuned = { inlineBudget: V8_DEFAULT, inlineLimit: V8_DEFAULT_LIMIT, calleeLimit: V8_DEFAULT_CALLEE, source: 'v8-default' };
  } else {
    v8.setFlagsFromString(`${FLAG}=${PORT_INLINE_BUDGET}`);
    v8.setFlagsFromString(`${LIMIT_FLAG}=${PORT_INLINE_LIMIT}`);
    v8.setFlagsFromString(`${CALLEE_FLAG}=${PORT_CALLEE_LIMIT}`);
    tuned = { inlineBudget: PORT_INLINE_BUDGET, inlineLimit: PORT_INLINE_LIMIT, calleeLimit: PORT_CALLEE_LIMIT, source: 'heaplab' };
  }
  return tuned;
}

/** One line for a report: the budgets and how to change them. */
export function describePortJit(jit: PortJit): string {
  const why = jit.source === 'heaplab' ? `set by heaplab; V8's defaults are ${V8_DEFAULT}, ${V8_DEFAULT_LIMIT} and ${V8_DEFAULT_CALLEE}, HEAPLAB_V8_DEFAULTS=1 keeps them`
    : jit.source === 'process' ? 'given to node' : "V8's defaults (HEAPLAB_V8_DEFAULTS=1)";
  return `V8 inlining budget for the ports: ${jit.inlineBudget} bytes of bytecode, at most ${jit.inlineLimit} in one function, callees of up to ${jit.calleeLimit} (${why}); the C side is gcc -O2`;
}
