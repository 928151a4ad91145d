#!/usr/bin/env node
/**
 * heaplab — the command line. One table of commands; each lives in lib/cli/NAME.ts
 * as `export async function main(argv: string[]): Promise<number>` (the exit code),
 * and is imported only when it runs, so one command's dependencies (the addon, for
 * instance) never stop another from starting.
 */
import { isMainModule } from './util/entry.js';
import { usageLines } from './cli/usage.js';

export interface Command {
  /** One line for `heaplab --help`. */
  summary: string;
  /** The usage line, after `heaplab ` (lib/cli/usage.ts). */
  usage: string;
  load: () => Promise<{ main: (argv: string[]) => Promise<number> }>;
}

export const commands: Record<string, Command> = {
  compare: {
    summary: 'replay the default traces through each C allocator and its TypeScript port: equal decisions? speed ratio',
    usage: usageLines.compare,
    load: () => import('./cli/compare.js'),
  },
  run: {
    summary: 'run a program on one of heaplab\'s allocators (LD_PRELOAD); exit code passed through',
    usage: usageLines.run,
    load: () => import('./cli/run.js'),
  },
  which: {
    summary: 'print the path of an allocator\'s preload library, for LD_PRELOAD=...',
    usage: usageLines.which,
    load: () => import('./cli/which.js'),
  },
  sanity: {
    summary: 'run real programs (python3, gcc, node, git, sort, three threaded C programs) on glibc and on each allocator; outputs must match',
    usage: usageLines.sanity,
    load: () => import('./cli/sanity.js'),
  },
  trace: {
    summary: 'record every malloc-family call of a program into a trace file, and summarise it',
    usage: usageLines.trace,
    load: () => import('./cli/trace.js'),
  },
  map: {
    summary: 'a picture of each design\'s heap on one trace (a recorded one, or seeded): blocks, overheads, fragmentation over time (HTML)',
    usage: usageLines.map,
    load: () => import('./cli/map.js'),
  },
  bench: {
    summary: 'every allocator (heaplab\'s, their TS ports, glibc, jemalloc/mimalloc/tcmalloc if installed) on the same workloads; tables + HTML report',
    usage: usageLines.bench,
    load: () => import('./cli/bench.js'),
  },
  churn: {
    summary: 'the churn harness as a program of its own under each allocator (LD_PRELOAD), interleaved rounds: throughput, malloc tail, memory; medians, ratios to glibc',
    usage: usageLines.churn,
    load: () => import('./cli/churn.js'),
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = [
    'Usage: heaplab <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'heaplab <command> --help shows the options of one command.',
  ];
  return lines.join('\n');
}

/** Runs `heaplab ARGV...`; returns the exit code (2 for a usage error). */
export async function dispatch(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && rest[0] && commands[rest[0]]) return dispatch([rest[0], '--help']);
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`heaplab: unknown command ${JSON.stringify(name)} (see heaplab --help)\n`);
    return 2;
  }
  const module = await command.load();
  return module.main(rest);
}

/**
 * A closed pipe (`heaplab which | head -1`) is the reader saying it has enough:
 * stop quietly, as other command-line tools do, instead of printing EPIPE.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

if (isMainModule(import.meta.url)) {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  dispatch(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      const err = error as Error & { code?: string };
      process.stderr.write(`${err.message ?? String(error)}\n`);
      process.exitCode = err.code === 'ERR_HEAPLAB_UNKNOWN_ALLOCATOR' ? 2 : 1;
    },
  );
}
