/**
 * heaplab map: a picture of each design's heap on one trace (lib/map/map.ts),
 * written as one HTML page.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { allocatorKinds, type AllocatorKind } from '../kinds.js';
import { buildHeapMap, renderHeapMap } from '../map/map.js';
import { readTrace } from '../trace/file.js';
import { defaultTraces } from '../trace/workloads.js';
import { benchWorkloadNames, benchWorkloads } from '../bench/workloads.js';
import type { Trace } from '../trace/trace.js';
import { allocatorArgument, parseOptions, usageFailure, UsageError } from './common.js';
import { usageLines } from './usage.js';
import { Progress } from '../util/progress.js';

const USAGE = usageLines.map;
const DEFAULT_OUT = 'report/map.html';

const HELP = `Usage: heaplab ${USAGE}

Replays one trace on each design and writes a picture of their heaps (HTML with
SVG): the memory each holds after operation N, as rows of bytes at one scale for
all, coloured by what it is (asked for, rounding slack, the design's headers,
free, the design's own bytes); and over the whole trace, bytes mapped, bytes
live, the largest free block and fragmentation.

Options:
  --trace NAME|FILE   a trace file (heaplab trace records one), one of compare's
                      traces (heaplab compare --list), or a bench workload
                      (fast, space, stable, realtime); default: stable
  --allocator a,b     only these designs (${allocatorKinds.join(', ')})
  --at N              the heap after operation N (default: where live bytes peak)
  -o, --out FILE      the page (default ${DEFAULT_OUT})
  --json              print each design's figures as JSON on stdout
  -h, --help          this text
`;

function loadTrace(spec: string): Trace {
  if (existsSync(spec)) return readTrace(spec);
  const seeded = defaultTraces(1).find((t) => t.name === spec);
  if (seeded) return seeded;
  const workload = benchWorkloads(1, [spec]).find((w) => w.traces.length === 1);
  if (workload) return workload.traces[0]!;
  const names = [...defaultTraces(1).map((t) => t.name), ...benchWorkloadNames.filter((w) => w !== 'scalable')];
  throw new UsageError(`--trace ${spec}: no such file, and not a trace name (one of ${names.join(', ')})`);
}

export async function main(argv: string[]): Promise<number> {
  let trace: Trace;
  let kinds: AllocatorKind[] = [...allocatorKinds];
  let at: number | undefined;
  let out = DEFAULT_OUT;
  let json = false;
  try {
    const { values } = parseOptions({
      args: argv,
      options: {
        trace: { type: 'string' },
        allocator: { type: 'string', short: 'a' },
        at: { type: 'string' },
        out: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (values.allocator !== undefined) {
      kinds = values.allocator.split(',').filter(Boolean).map(allocatorArgument);
      if (!kinds.length) throw new UsageError('--allocator needs at least one name');
    }
    trace = loadTrace(values.trace ?? 'stable');
    if (trace.op.length === 0) throw new UsageError(`--trace ${values.trace}: the trace has no operations`);
    if (values.at !== undefined) {
      const n = Number(values.at);
      if (!Number.isInteger(n) || n < 1 || n > trace.op.length) {
        throw new UsageError(`--at needs an operation from 1 to ${trace.op.length} (the trace's length); received ${values.at}`);
      }
      at = n - 1;
    }
    if (values.out !== undefined) out = values.out;
    json = values.json ?? false;
  } catch (error) {
    if (error instanceof UsageError) return usageFailure('map', USAGE, error.message);
    throw error;
  }
  const progress = new Progress('map', 1);
  const map = buildHeapMap(trace, kinds, at === undefined ? {} : { at });
  progress.tick(trace.name);
  progress.end();
  const file = resolve(out);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, renderHeapMap(map));
  if (json) {
    const figures = map.designs.map((d) => ({ kind: d.kind, figures: d.figures, timeline: d.timeline }));
    process.stdout.write(`${JSON.stringify({ trace: map.trace, ops: map.ops, at: map.at + 1, designs: figures }, null, 2)}\n`);
  } else {
    process.stdout.write(`heaplab map: ${map.trace}, the heaps after operation ${(map.at + 1).toLocaleString('en-US')} of ${map.ops.toLocaleString('en-US')}\n`);
    for (const d of map.designs) {
      const f = d.figures;
      process.stdout.write(
        `  ${d.kind.padEnd(9)} held ${f.heldBytes.toLocaleString('en-US')} B · asked ${(f.requestedBytes ?? 0).toLocaleString('en-US')} B · free ${f.freeBytes.toLocaleString('en-US')} B in ${f.freeBlocks} blocks · fragmentation ${f.fragmentation.toFixed(2)}\n`,
      );
    }
    process.stdout.write(`map: ${file}\n`);
  }
  return 0;
}
