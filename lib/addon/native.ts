/**
 * The loader: finds the compiled addon and says what it tried when it cannot.
 * node-gyp-build looks in build/Release, build/Debug, then prebuilds/PLATFORM-ARCH.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Binding from '../../binding.js';
import { packageRoot } from '../util/package-root.js';
import { AddonNotFoundError } from '../errors.js';

export type { NativeHeap, NativeStats, NativeCheckResult, NativeAllocatorName } from '../../binding.js';

const require = createRequire(import.meta.url);


function load(): typeof Binding {
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    return nodeGypBuild(packageRoot) as typeof Binding;
  } catch (cause) {
    const tried = [
      join(packageRoot, 'build', 'Release', 'heaplab.node'),
      join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, '*.node'),
    ];
    const message = [
      `heaplab: could not load its native addon (${process.platform}-${process.arch}, Node ${process.version}, N-API 8).`,
      `Tried: ${tried.join(', ')}.`,
      `Cause: ${(cause as Error).message.split('\n')[0]}`,
      `Fix: run \`npm run build:native\` in ${packageRoot} (needs cmake >= 3.16, gcc, g++, make),`,
      `or reinstall with \`npm rebuild heaplab\`.`,
    ].join('\n');
    throw new AddonNotFoundError(message, { cause });
  }
}

export const binding: typeof Binding = load();
