/**
 * V8's inlining budget in the processes that time the ports (`heaplab compare`,
 * `heaplab bench`).
 *
 * Each port mirrors its C function by function: many small ones (block_size,
 * list_remove, mapping_insert …), which gcc inlines at -O2. TurboFan inlines the
 * callees of a function it optimizes only up to a cumulative 920 bytes of their
 * bytecode (`--max-inlined-bytecode-size-cumulative`). A port's malloc path alone
 * takes that: `--trace-turbo-inlining` on the tlsf port shows the whole malloc path
 * inlined into the replay loop and free's (heap_free, list_remove, block_insert)
 * left as calls. With a budget of 3000 bytes, `heaplab compare`'s TS/C geometric
 * means went from 2.78 to 2.16 (tlsf), 2.39 to 2.09 (dlmalloc) and 2.29 to 1.94
 * (liballoc) in one session; 2000 gave less, 5000 no more.
 *
 * The flag is set before any port function is optimized (V8 reads it when it
 * optimizes), unless the process was started with a budget of its own, or
 * HEAPLAB_V8_DEFAULTS=1 asks for V8's defaults. A program that runs a port itself
 * can start node with the same flag; the library never changes its host's flags.
 * The flag is the whole process's: `heaplab bench` times its Node-API paths
 * before it sets it, under V8's own flags, as a program using heaplab runs them.
 */
import v8 from 'node:v8';

export const PORT_INLINE_BUDGET = 3000;
const FLAG = '--max-inlined-bytecode-size-cumulative';
const V8_DEFAULT = 920;

export interface PortJit {
  /** The cumulative inlining budget the ports run with, in bytes of bytecode. */
  inlineBudget: number;
  /** Who chose it: heaplab, the process's own flags, or V8's default. */
  source: 'heaplab' | 'process' | 'v8-default';
}

/** A budget node was started with (`--flag=N` or `--flag N`, V8's `_` spelling too), if any. */
function givenBudget(): number | undefined {
  const args = process.execArgv.map((a) => a.replace(/_/g, '-')); /* node refuses this flag in NODE_OPTIONS */
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith(`${FLAG}=`)) return Number(a.slice(FLAG.length + 1));
    if (a === FLAG) return Number(args[i + 1]);
  }
  return undefined;
}

let tuned: PortJit | undefined;

/** Raises V8's inlining budget for this process (once), and says what the ports run with. */
export function tuneJitForPorts(): PortJit {
  if (tuned) return tuned;
  const given = givenBudget();
  if (given !== undefined) tuned = { inlineBudget: given, source: 'process' };
  else if (process.env.HEAPLAB_V8_DEFAULTS === '1') tuned = { inlineBudget: V8_DEFAULT, source: 'v8-default' };
  else {
    v8.setFlagsFromString(`${FLAG}=${PORT_INLINE_BUDGET}`);
    tuned = { inlineBudget: PORT_INLINE_BUDGET, source: 'heaplab' };
  }
  return tuned;
}

/** One line for a report: the budget and how to change it. */
export function describePortJit(jit: PortJit): string {
  const why = jit.source === 'heaplab' ? `set by heaplab; V8's default is ${V8_DEFAULT}, HEAPLAB_V8_DEFAULTS=1 keeps it`
    : jit.source === 'process' ? 'given to node' : "V8's default (HEAPLAB_V8_DEFAULTS=1)";
  return `V8 inlining budget for the ports: ${jit.inlineBudget} bytes of bytecode (${why}); the C side is gcc -O2`;
}
