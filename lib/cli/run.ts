/**
 * heaplab run [--allocator NAME] -- COMMAND [ARGS...]
 * Runs COMMAND with LD_PRELOAD set to libheaplab-NAME.so; exits with its exit
 * code (128 + n when a signal ended it).
 */
import { defaultPreloadKind, preloadEnv, preloadLibraryPath } from '../preload/preload.js';
import { allocatorNameArgument, parseOptions, runInherited, splitCommand, usageFailure, UsageError } from './common.js';
import { usageLines } from './usage.js';
import { allocatorNames } from '../kinds.js';

const USAGE = usageLines.run;

const HELP = `Usage: heaplab ${USAGE}

Runs COMMAND with LD_PRELOAD=libheaplab-NAME.so, so that its malloc, free,
calloc, realloc, posix_memalign... are heaplab's NAME allocator. Programs it
starts inherit the library too. The exit code is COMMAND's (128 + n if signal n
ended it).

Options:
  -a, --allocator NAME   ${allocatorNames.join(', ')} (default ${defaultPreloadKind})
  -h, --help             this text

Environment passed through: HEAPLAB_TRACE=FILE records every call (see heaplab trace).
`;

export async function main(argv: string[]): Promise<number> {
  let allocator: string = defaultPreloadKind;
  let command: string[];
  try {
    const split = splitCommand(argv, ['--allocator', '-a']);
    const { values } = parseOptions({
      args: split.options,
      options: {
        allocator: { type: 'string', short: 'a' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (values.allocator !== undefined) allocator = values.allocator;
    command = split.command;
    allocatorNameArgument(allocator);
    if (command.length === 0) throw new UsageError('no command to run (put it after --)');
  } catch (error) {
    if (error instanceof UsageError) return usageFailure('run', USAGE, error.message);
    throw error;
  }
  const library = preloadLibraryPath(allocator);
  return runInherited(command, preloadEnv(library));
}
