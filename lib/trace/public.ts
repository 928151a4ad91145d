/**
 * `heaplab/trace`: reading and writing trace files (docs/trace-format.md) —
 * what `heaplab trace` records, and what `heaplab compare`/`bench` replay.
 *
 * ```ts
 * import { readTrace, summarizeTrace } from 'heaplab/trace';
 * const trace = readTrace('heaplab.trace');
 * console.log(summarizeTrace(trace).peakLiveBytes);
 * ```
 */
export { readTrace, readTraceHeader, writeTrace, traceFiles, summarizeTrace, TraceFormatError } from './file.js';
export type { RecordedTrace, TraceHeader, TraceSummary } from './file.js';
export { Op, opNames, TraceBuilder } from './trace.js';
export type { OpCode, Trace } from './trace.js';
