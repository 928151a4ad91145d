/** Helpers shared by the specs. */
import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import { HeaplabError } from '../lib/index.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const buildDir = join(repoRoot, 'build');

/** A small seeded PRNG (mulberry32): the same seed gives the same run. */
export { rng as mulberry32 } from '../lib/trace/workloads.js';

/** The byte a block with this id holds at offset i. */
export function patternByte(id: number, i: number): number {
  return (id * 131 + i * 7 + (i >>> 8)) & 0xff;
}

export function built(path: string): boolean {
  return existsSync(path);
}

/** The `code` of the HeaplabError that `fn` throws (failing if it throws anything else), or undefined. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HeaplabError);
    return (e as HeaplabError).code;
  }
  return undefined;
}
