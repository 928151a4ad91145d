/**
 * heaplab trace [--allocator NAME] [--out FILE] -- COMMAND [ARGS...]
 * Runs COMMAND on a preload library with HEAPLAB_TRACE=FILE, then summarises
 * the trace (and the FILE.<pid> traces of the programs COMMAND ran).
 */
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { defaultPreloadKind, preloadEnv, preloadLibraryPath } from '../preload/preload.js';
import { allocatorNames } from '../kinds.js';
import { readTrace, summarizeTrace, traceFiles, type RecordedTrace, type TraceSummary } from '../trace/file.js';
import { allocatorNameArgument,
  formatBytes,
  formatCount,
  parseOptions,
  runInherited,
  splitCommand,
  usageFailure,
  UsageError,
} from './common.js';
import { usageLines } from './usage.js';

const USAGE = usageLines.trace;
const DEFAULT_OUT = 'heaplab.trace';

const HELP = `Usage: heaplab ${USAGE}

Runs COMMAND on heaplab's allocator (LD_PRELOAD) with HEAPLAB_TRACE=FILE: every
malloc, calloc, realloc, memalign and free is recorded in FILE, in the binary
format of docs/trace-format.md (read it with readTrace() from 'heaplab/trace').
Programs that COMMAND runs record into FILE.<pid>. Then prints a summary:
operations by kind, sizes, peak live bytes, threads.

Options:
  -a, --allocator NAME   ${allocatorNames.join(', ')} (default ${defaultPreloadKind})
  -o, --out FILE         the trace file (default ./${DEFAULT_OUT}); FILE and old
                         FILE.<pid> files are replaced
  --json                 print the summary as JSON on stdout (one entry per file);
                         the program's own output then goes to stderr
  -h, --help             this text

The exit code is COMMAND's.
`;

/** Why `out` cannot be the trace file, or undefined if it can. */
function outProblem(out: string, file: string): string | undefined {
  const isDir = (p: string): boolean => {
    try {
      return statSync(p).isDirectory();
    } catch {
      return false;
    }
  };
  if (out.endsWith('/') || isDir(file)) return `--out ${out} is a folder; name a file in it (e.g. ${resolve(file, DEFAULT_OUT)})`;
  const dir = dirname(file);
  if (!isDir(dir)) return `--out ${out}: the folder ${dir} does not exist`;
  try {
    writeFileSync(file, ''); // the library will open it the same way
    rmSync(file, { force: true });
  } catch (error) {
    return `--out ${out}: cannot write it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
  }
  return undefined;
}

/** Removes FILE and FILE.<pid> left by an earlier recording. */
function removeOldTraces(file: string): void {
  const dir = dirname(file);
  const base = basename(file);
  rmSync(file, { force: true });
  for (const name of readdirSync(dir)) {
    if (name.startsWith(`${base}.`) && /^\d+$/.test(name.slice(base.length + 1))) rmSync(resolve(dir, name), { force: true });
  }
}

function describe(trace: RecordedTrace, s: TraceSummary, path: string): string[] {
  const h = trace.header;
  const kinds = Object.entries(s.byOp)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${formatCount(n)}`)
    .join(' · ');
  const lines = [
    `${path}: ${h.program || '?'} (pid ${h.pid}) on ${h.allocator}`,
    `  operations  ${formatCount(s.operations)}${kinds ? `  (${kinds})` : ''}`,
  ];
  if (s.operations > 0) {
    lines.push(
      `  sizes       min ${formatCount(s.sizeMin)} · median ${formatCount(s.sizeMedian)} · max ${formatCount(s.sizeMax)} bytes`,
      `  peak live   ${formatBytes(s.peakLiveBytes)} (${formatCount(s.peakLiveBytes)} bytes), ${formatCount(s.peakLiveBlocks)} blocks at most; ${formatCount(s.liveBlocksAtEnd)} blocks live at the end`,
      `  threads     ${s.threads}`,
    );
  }
  if (trace.droppedBytes > 0) lines.push(`  (the program exec'd or was killed: ${formatCount(trace.droppedBytes)} unwritten bytes dropped)`);
  return lines;
}

export async function main(argv: string[]): Promise<number> {
  let allocator: string = defaultPreloadKind;
  let out = DEFAULT_OUT;
  let json = false;
  let command: string[];
  try {
    const split = splitCommand(argv, ['--allocator', '-a', '--out', '-o']);
    const { values } = parseOptions({
      args: split.options,
      options: {
        allocator: { type: 'string', short: 'a' },
        out: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (values.allocator !== undefined) allocator = values.allocator;
    if (values.out !== undefined) out = values.out;
    json = values.json ?? false;
    command = split.command;
    allocatorNameArgument(allocator);
    if (command.length === 0) throw new UsageError('no command to trace (put it after --)');
  } catch (error) {
    if (error instanceof UsageError) return usageFailure('trace', USAGE, error.message);
    throw error;
  }
  const file = resolve(out);
  // the file must be one the library can write: say what is wrong before the program runs
  const problem = outProblem(out, file);
  if (problem) return usageFailure('trace', USAGE, problem);
  const library = preloadLibraryPath(allocator);
  removeOldTraces(file);
  const env = preloadEnv(library);
  delete env['HEAPLAB_TRACE_CHILD'];
  env['HEAPLAB_TRACE'] = file;
  const code = await runInherited(command, env, { stdoutToStderr: json });

  const files = traceFiles(file);
  const read: { path: string; trace: RecordedTrace; summary: TraceSummary }[] = [];
  const problems: string[] = [];
  for (const path of files) {
    try {
      const trace = readTrace(path);
      read.push({ path, trace, summary: summarizeTrace(trace) });
    } catch (error) {
      problems.push(`${path}: ${(error as Error).message}`);
    }
  }
  if (read.length === 0) {
    const why =
      code === 127 ? 'the program was not found' :
      code === 126 ? 'the program could not be started' :
      'the program made no call through the dynamic malloc (a static or setuid program ignores LD_PRELOAD)';
    process.stderr.write(`heaplab trace: no trace was written to ${file}: ${why}\n`);
    if (existsSync(file)) for (const p of problems) process.stderr.write(`  ${p}\n`);
    return code === 0 ? 1 : code;
  }
  if (json) {
    const files = read.map((r) => ({ path: r.path, header: r.trace.header, summary: r.summary, droppedBytes: r.trace.droppedBytes }));
    process.stdout.write(`${JSON.stringify({ exitCode: code, files, problems }, null, 2)}\n`);
    return code;
  }
  const total = read.reduce((sum, r) => sum + r.summary.operations, 0);
  // the program that allocated most is the one described in full
  const ranked = [...read].sort((a, b) => b.summary.operations - a.summary.operations);
  const main = ranked[0]!;
  const report = [
    '',
    `heaplab trace: ${formatCount(total)} operations recorded in ${read.length} file${read.length === 1 ? '' : 's'}`,
    ...describe(main.trace, main.summary, main.path),
  ];
  if (read.length > 1) {
    report.push(`  and the other programs of the run (FILE.<pid>: programs it started):`);
    const shown = ranked.slice(1, 21);
    for (const r of shown) {
      report.push(`    ${formatCount(r.summary.operations).padStart(12)}  ${(r.trace.header.program || '?').padEnd(15)} ${r.path}`);
    }
    if (ranked.length > 21) report.push(`    ... and ${ranked.length - 21} more`);
  }
  report.push(...problems);
  process.stderr.write(`${report.join('\n')}\n`);
  return code;
}
