/**
 * heaplab sanity [--quick]: the CLI over lib/sanity/ (real programs on each
 * allocator vs glibc, byte for byte).
 */
import { allocatorNames } from '../kinds.js';
import { programs, sanityPrograms } from '../sanity/programs.js';
import { formatSanityTable, runSanity, type SanityOptions } from '../sanity/sanity.js';
import { allocatorNameArgument, parseOptions, usageFailure, UsageError } from './common.js';
import { usageLines } from './usage.js';

const USAGE = usageLines.sanity;

/* ---- the command ---------------------------------------------------------------- */

const HELP = `Usage: heaplab ${USAGE}

Runs real programs on glibc's malloc and on each heaplab allocator (LD_PRELOAD)
and compares their output byte for byte:
${programs.map((p) => `  ${p.name.padEnd(8)} ${p.what}`).join('\n')}

Prints a table: program x allocator, pass/FAIL, time relative to glibc, peak RSS.
Exits with 1 on any mismatch, crash or timeout.

Options:
  --quick              smaller inputs (what npm test runs; well under a minute)
  --allocator a,b      only these (${allocatorNames.join(', ')})
  --program p,q        only these programs
  --keep               keep the scratch directory
  --timeout SECONDS    per run (default 60 with --quick, else 300)
  --json               print the results as JSON on stdout instead of the table
  -h, --help           this text
`;

export async function main(argv: string[]): Promise<number> {
  const options: SanityOptions = {};
  let json = false;
  try {
    const { values } = parseOptions({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        allocator: { type: 'string', short: 'a' },
        program: { type: 'string', short: 'p' },
        keep: { type: 'boolean' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    options.quick = values.quick ?? false;
    json = values.json ?? false;
    options.keep = values.keep ?? false;
    if (values.allocator !== undefined) {
      const names = values.allocator.split(',').filter(Boolean);
      options.allocators = (names.length ? names : [values.allocator]).map(allocatorNameArgument);
    }
    if (values.program !== undefined) {
      const names = values.program.split(',').filter(Boolean);
      const bad = names.filter((n) => !sanityPrograms.includes(n));
      if (bad.length || !names.length) {
        throw new UsageError(`unknown program ${JSON.stringify(bad[0] ?? values.program)} (expected ${sanityPrograms.join(', ')})`);
      }
      options.programs = names;
    }
    if (values.timeout !== undefined) {
      const t = Number(values.timeout);
      if (!(t > 0)) throw new UsageError(`Expected a positive number of seconds for --timeout but received ${values.timeout}`);
      options.timeoutSeconds = t;
    }
  } catch (error) {
    if (error instanceof UsageError) return usageFailure('sanity', USAGE, error.message);
    throw error;
  }

  const tty = process.stderr.isTTY === true;
  options.onProgress = (e) => {
    const where = `[${e.index}/${e.total}] ${e.program} on ${e.target}`;
    if (tty) {
      const state = e.result ? `${e.result.status}${e.result.status === 'pass' ? ` (${e.result.seconds.toFixed(2)} s)` : ''}` : 'running...';
      process.stderr.write(`\r\x1b[Ksanity ${where}: ${state}`);
    } else if (e.result) {
      const r = e.result;
      const detail = r.status === 'pass' ? `${r.seconds.toFixed(2)} s` : (r.reason ?? '').split('\n')[0];
      process.stderr.write(`sanity ${where}: ${r.status} ${detail}\n`);
    }
  };
  const report = await runSanity(options);
  if (tty) process.stderr.write('\r\x1b[K');
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatSanityTable(report)}\n`);
  if (options.keep) process.stdout.write(`scratch directory kept: ${report.scratch}\n`);
  return report.ok ? 0 : 1;
}
