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
 * malloc was a call. Raised to 1200, over all 23 traces with `heaplab compare`'s
 * own timing, medians of 3 interleaved runs, two sets:
 *
 *   callees up to           tlsf        dlmalloc    liballoc
 *   460 (V8's)              1.59  1.60  1.61  1.63  1.48  1.51
 *   1200                    1.57  1.60  1.52  1.54  1.43  1.47
 *
 * tlsf has no function that large. With callees of up to 1200 bytes, the
 * cumulative budget binds again: `--trace-turbo-inlining` on replayPort shows the
 * code after the replay loop (freeing the blocks still live, the checker) inlined
 * before the loop, and tlsf's heap_malloc and block_locate_free left as calls
 * once the out-of-memory traces had run (its stack-bursts 35 -> 49 ns/op). Raised
 * to 30000 / 60000, `heaplab compare --shared`, three interleaved runs each:
 *
 *   cumulative / absolute   tlsf              dlmalloc          liballoc
 *   10000 / 20000           1.66  1.63  1.68  1.74  1.69  1.71  1.49  1.47  1.43
 *   30000 / 60000           1.53  1.54  1.51  1.68  1.70  1.67  1.44  1.48  1.49
 *
 * The price is compile time: one compile of dlmalloc's replay loop (realloc-aligned,
 * `--trace-opt`) took 0.35 s where it took 0.09 s.
 *
 * Raised again to 60000 / 120000, with each trace in a process of its own
 * (`heaplab compare --no-thing --json`, two interleaved pairs):
 *
 *   cumulative / absolute   tlsf         dlmalloc     liballoc     dlmalloc's worst trace
 *   30000 / 60000           1.455 1.501  1.490 1.531  1.413 1.400  2.21 2.22 (realloc-aligned)
 *   60000 / 120000          1.473 1.471  1.454 1.451  1.408 1.411  1.96 1.97
 *
 * One compile of dlmalloc's loop now takes 0.4-0.6 s; the whole run took 4.0-4.3
 * min either way. At 100000 / 200000 V8 spent most of a 5 s loop compiling.
 *
 * Keeping the replay loop out of replayPort (called through Reflect.apply, which
 * V8 does not inline) changed nothing beside either budget (tlsf 1.64, 1.63, 1.62
 * and 1.52, 1.54, 1.53), nor did keeping V8's top-tier register allocator for
 * huge functions (`--no-turbo-use-mid-tier-regalloc-for-huge-functions`).
 *
 * The flags are set before any port function is optimized (V8 reads them when it
 * optimizes), unless the process was started with any of the three, or
 * HEAPLAB_V8_DEFAULTS=1 asks for V8's defaults. A program that runs a port itself
 * can start node with the same flags; the library never changes its host's flags.
 * The flags are the whole process's: `heaplab bench` times its Node-API paths
 * before it sets them, under V8's own flags, as a program using heaplab runs them.
 */
import v8 from 'node:v8';

export const PORT_INLINE_BUDGET = 60000;
export const PORT_INLINE_LIMIT = 120000;
export const PORT_CALLEE_LIMIT = 1200;
const FLAG = '--max-inlined-bytecode-size-cumulative';
const LIMIT_FLAG = '--max-inlined-bytecode-size-absolute';
const CALLEE_FLAG = '--max-inlined-bytecode-size';
const V8_DEFAULT = 920;
const V8_DEFAULT_LIMIT = 4600;
const V8_DEFAULT_CALLEE = 460;
const MAIN_THREAD_FLAG = '--no-concurrent-recompilation';

export interface PortJit {
  /** The cumulative inlining budget the ports run with, in bytes of bytecode. */
  inlineBudget: number;
  /** The most bytecode inlined into one optimized function, in bytes. */
  inlineLimit: number;
  /** The largest function V8 inlines, in bytes of its bytecode. */
  calleeLimit: number;
  /** Who chose them: heaplab, the process's own flags, or V8's defaults. */
  source: 'heaplab' | 'process' | 'v8-default';
  /** V8 optimizes on the main thread (node was started with --no-concurrent-recompilation). */
  compilesOnMainThread: boolean;
}

/** node's own arguments, in V8's `-` spelling (V8 takes `_` too; node refuses these flags in NODE_OPTIONS). */
function nodeArgs(): string[] {
  return process.execArgv.map((a) => a.replace(/_/g, '-'));
}

/** A value node was started with for `flag` (`--flag=N` or `--flag N`), if any. */
function given(flag: string): number | undefined {
  const args = nodeArgs();
  let value: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith(`${flag}=`)) value = Number(a.slice(flag.length + 1));
    else if (a === flag) value = Number(args[i + 1]);
  }
  return value; /* V8 keeps the last */
}

/** Whether node was told to optimize on its main thread (true), on a second one (false), or nothing (the last spelling wins, as in V8). */
function givenMainThread(): boolean | undefined {
  let value: boolean | undefined;
  for (const a of nodeArgs()) {
    if (a === MAIN_THREAD_FLAG) value = true;
    else if (a === '--concurrent-recompilation') value = false;
  }
  return value;
}

/**
 * V8 compiles optimized code on a second thread by default, and a trace that
 * deoptimizes a port's loop is timed on the old code until the new code is in.
 * On this 2-core VM that compile took 30-50 ms, which the settle window covers
 * (lib/replay/compare.ts); with larger callees inlined there is more to compile,
 * and it waits longer when another tenant holds the second core: one `heaplab
 * compare` in three timed dlmalloc's first trace at 5.5x (93 ns per operation,
 * 17 once settled). V8 reads the flag only when node starts, so the command that
 * times the ports starts node again with it (unless it was given either way, or
 * HEAPLAB_V8_DEFAULTS=1): the node arguments for that, or null to go on here.
 */
export function relaunchArgsForPorts(): string[] | null {
  if (process.env.HEAPLAB_V8_DEFAULTS === '1') return null;
  if (givenMainThread() !== undefined) return null;
  /* the inspector's port is the parent's: a child asking for it again could not have it */
  const own = process.execArgv.filter((a) => !/^--(inspect|debug)/.test(a));
  return [...own, MAIN_THREAD_FLAG];
}

let tuned: PortJit | undefined;

/** Raises V8's inlining budgets for this process (once), and says what the ports run with. */
export function tuneJitForPorts(): PortJit {
  if (tuned) return tuned;
  const budget = given(FLAG);
  const limit = given(LIMIT_FLAG);
  const callee = given(CALLEE_FLAG);
  const compilesOnMainThread = givenMainThread() === true;
  if (budget !== undefined || limit !== undefined || callee !== undefined) {
    tuned = {
      inlineBudget: budget ?? V8_DEFAULT,
      inlineLimit: limit ?? V8_DEFAULT_LIMIT,
      calleeLimit: callee ?? V8_DEFAULT_CALLEE,
      source: 'process',
      compilesOnMainThread,
    };
  } else if (process.env.HEAPLAB_V8_DEFAULTS === '1') {
    tuned = { inlineBudget: V8_DEFAULT, inlineLimit: V8_DEFAULT_LIMIT, calleeLimit: V8_DEFAULT_CALLEE, source: 'v8-default', compilesOnMainThread };
  } else {
    v8.setFlagsFromString(`${FLAG}=${PORT_INLINE_BUDGET}`);
    v8.setFlagsFromString(`${LIMIT_FLAG}=${PORT_INLINE_LIMIT}`);
    v8.setFlagsFromString(`${CALLEE_FLAG}=${PORT_CALLEE_LIMIT}`);
    tuned = { inlineBudget: PORT_INLINE_BUDGET, inlineLimit: PORT_INLINE_LIMIT, calleeLimit: PORT_CALLEE_LIMIT, source: 'heaplab', compilesOnMainThread };
  }
  return tuned;
}

/** One line for a report: the budgets and how to change them. */
export function describePortJit(jit: PortJit): string {
  const why = jit.source === 'heaplab' ? `set by heaplab; V8's defaults are ${V8_DEFAULT}, ${V8_DEFAULT_LIMIT} and ${V8_DEFAULT_CALLEE}, HEAPLAB_V8_DEFAULTS=1 keeps them`
    : jit.source === 'process' ? 'given to node' : "V8's defaults (HEAPLAB_V8_DEFAULTS=1)";
  return `V8 inlining budget for the ports: ${jit.inlineBudget} bytes of bytecode, at most ${jit.inlineLimit} in one function, callees of up to ${jit.calleeLimit} (${why}); optimized ${jit.compilesOnMainThread ? 'on the main thread' : 'on a second thread'}; the C side is gcc -O2`;
}
