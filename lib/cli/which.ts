/**
 * heaplab which [NAME]
 * Prints the absolute path of libheaplab-NAME.so, for LD_PRELOAD=$(heaplab which NAME).
 * Without NAME, lists every allocator and its library (or that it is not built).
 */
import { PreloadLibraryNotFoundError, preloadLibraryPath } from '../preload/preload.js';
import { allocatorNameArgument, parseOptions, usageFailure, UsageError } from './common.js';
import { usageLines } from './usage.js';
import { allocatorNames } from '../kinds.js';

const USAGE = usageLines.which;

const HELP = `Usage: heaplab ${USAGE}

Prints the absolute path of the allocator's LD_PRELOAD library:

  LD_PRELOAD=$(npx heaplab which dlmalloc) python3 -c "print('hello')"

Without a name, lists each allocator with its library (--json: as a JSON
object, null where a library is not built). Exits with 1 if a library is not
built (and says how to build it), 2 for an unknown name.
`;

export async function main(argv: string[]): Promise<number> {
  let names: string[];
  let json = false;
  try {
    const { values, positionals } = parseOptions({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (positionals.length > 1) throw new UsageError('expected at most one allocator name');
    names = positionals;
    json = values.json ?? false;
    for (const name of names) allocatorNameArgument(name);
  } catch (error) {
    if (error instanceof UsageError) return usageFailure('which', USAGE, error.message);
    throw error;
  }
  if (names.length === 1) {
    try {
      process.stdout.write(`${preloadLibraryPath(names[0]!)}\n`);
      return 0;
    } catch (error) {
      if (error instanceof PreloadLibraryNotFoundError) {
        process.stderr.write(`${error.message}\n`);
        return 1;
      }
      throw error;
    }
  }
  let missing = 0;
  if (json) {
    const paths: Record<string, string | null> = {};
    for (const kind of allocatorNames) {
      try {
        paths[kind] = preloadLibraryPath(kind);
      } catch (error) {
        if (!(error instanceof PreloadLibraryNotFoundError)) throw error;
        paths[kind] = null;
        missing++;
      }
    }
    process.stdout.write(`${JSON.stringify(paths, null, 2)}\n`);
    return missing ? 1 : 0;
  }
  for (const kind of allocatorNames) {
    try {
      process.stdout.write(`${kind.padEnd(14)} ${preloadLibraryPath(kind)}\n`);
    } catch (error) {
      if (!(error instanceof PreloadLibraryNotFoundError)) throw error;
      process.stdout.write(`${kind.padEnd(14)} (not built: npm run build:native)\n`);
      missing++;
    }
  }
  return missing ? 1 : 0;
}
