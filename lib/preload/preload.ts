/**
 * Where the LD_PRELOAD libraries are: libheaplab-NAME.so, built by
 * native/preload/preload.cmake next to the addon (build/Release/), or shipped in
 * prebuilds/PLATFORM-ARCH/. This module loads no native code, so the CLI's
 * run/which/sanity/trace work even where the addon itself does not load.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HeaplabError, UnknownAllocatorError } from '../errors.js';
import { type AllocatorKind, allocatorNames, isAllocatorName } from '../kinds.js';
import { packageRoot } from '../util/package-root.js';

/** The allocator `heaplab run` and `heaplab trace` use when none is named. */
export const defaultPreloadKind: AllocatorKind = 'tlsf';


/** A preload library (or the C test program) that was not built. */
export class PreloadLibraryNotFoundError extends HeaplabError {
  /** The paths that were tried, in order. */
  readonly tried: readonly string[];
  constructor(message: string, tried: readonly string[]) {
    super('ERR_HEAPLAB_PRELOAD_NOT_FOUND', message);
    this.tried = tried;
  }
}

/** The directories searched, in order. */
export function preloadSearchDirs(root: string = packageRoot): string[] {
  return [join(root, 'build', 'Release'), join(root, 'prebuilds', `${process.platform}-${process.arch}`)];
}

function find(file: string, what: string, root: string): string {
  const tried = preloadSearchDirs(root).map((dir) => join(dir, file));
  const found = tried.find((path) => existsSync(path));
  if (found) return found;
  throw new PreloadLibraryNotFoundError(
    [
      `heaplab: ${what} is not built.`,
      `Tried: ${tried.join(', ')}.`,
      `Fix: run \`npm run build:native\` in ${root} (needs cmake >= 3.16, gcc and make);`,
      `it builds build/Release/${file}.`,
    ].join('\n'),
    tried,
  );
}

/**
 * The absolute path of libheaplab-NAME.so (NAME: a design or NAME+cache), for LD_PRELOAD. Throws
 * UnknownAllocatorError for a name that is not an allocator, and
 * PreloadLibraryNotFoundError (saying how to build it) when it is missing.
 */
export function preloadLibraryPath(kind: string, root: string = packageRoot): string {
  if (!isAllocatorName(kind)) {
    throw new UnknownAllocatorError(
      `Expected an allocator name (${allocatorNames.join(', ')}) but received ${JSON.stringify(kind)}`,
    );
  }
  return find(`libheaplab-${kind}.so`, `the preload library for ${kind}`, root);
}

/** The C test of the preload libraries (test/preload/preload_test.c). */
export function preloadTestProgramPath(root: string = packageRoot): string {
  return find('heaplab-preload-test', 'the preload test program', root);
}

/** The churn harness (native/bench/churn.c) that `heaplab churn` runs under each allocator. */
export function churnProgramPath(root: string = packageRoot): string {
  return find('heaplab-churn', 'the churn harness', root);
}

/** LD_PRELOAD for `library`, ahead of whatever the environment preloads already. */
export function preloadEnv(library: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const existing = env['LD_PRELOAD'];
  return { ...env, LD_PRELOAD: existing ? `${library}:${existing}` : library };
}
