/**
 * The programs of \`heaplab sanity\`: what each runs, its inputs and how to run
 * it on a target. Their scripts are files beside this module (./scripts/), so
 * they can be read, linted and run by hand.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { AllocatorName } from '../kinds.js';
import { packageRoot } from '../util/package-root.js';

/** What a program runs on: 'glibc' (the reference) or an allocator's preload library. */
export type Target = 'glibc' | AllocatorName;

/** Copies ./scripts/NAME (shipped with the package) into `dir`. */
export function copyScript(name: string, dir: string): void {
  copyFileSync(join(packageRoot, 'lib', 'sanity', 'scripts', name), join(dir, name));
}

export interface Context {
  root: string;
  scratch: string;
  quick: boolean;
  /** The real python3 binary (not a pyenv shim), or null. */
  python: string | null;
}

export interface Invocation {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** Files the run writes that must equal glibc's run's (paths for this target). */
  outputs: string[];
}

export interface Program {
  name: string;
  what: string;
  /** Executables that must be on PATH, else the program is skipped. */
  requires: string[];
  /** Runs once, on glibc, before the first run: scripts, inputs, builds. */
  prepare?: (ctx: Context) => void;
  invocation: (ctx: Context, target: Target) => Invocation;
  /** Why the program cannot run here, if it cannot (after requires). */
  unavailable?: (ctx: Context) => string | undefined;
}




/** A deterministic generator of text (LCG), the same on every run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

function writeSortInput(path: string, lines: number): void {
  const next = lcg(12345);
  const fd = openSync(path, 'w');
  try {
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
    let chunk: string[] = [];
    for (let i = 0; i < lines; i++) {
      const r = next();
      chunk.push(`${(r >>> 4).toString(16)}\t${r % 100000}\t${words[r % 10]}-${i % 977}\n`);
      if (chunk.length === 10000) {
        writeSync(fd, chunk.join(''));
        chunk = [];
      }
    }
    writeSync(fd, chunk.join(''));
  } finally {
    closeSync(fd);
  }
}

function writeGitFiles(dir: string, files: number): void {
  const next = lcg(777);
  for (const version of ['v1', 'v2']) {
    for (let i = 0; i < files; i++) {
      const sub = join(dir, version, `d${i % 7}`);
      mkdirSync(sub, { recursive: true });
      const lines: string[] = [];
      for (let l = 0; l < 20 + (i % 40); l++) lines.push(`file ${i} line ${l} value ${(i * 31 + l * 17) % 1009}`);
      if (version === 'v2' && next() % 3 === 0) lines.splice(next() % lines.length, 1, `edited in v2: ${next()}`);
      writeFileSync(join(sub, `f${i}.txt`), `${lines.join('\n')}\n`);
    }
  }
}

/** heaplab's own C files, for gcc to compile: the allocators (quick: one). */
function gccSources(ctx: Context): string[] {
  const all = ['vendor/tlsf/tlsf.c', 'vendor/dlmalloc/dlmalloc.c', 'vendor/liballoc/liballoc.c', 'native/pages/mmap.c']
    .map((p) => join(ctx.root, p))
    .filter((p) => existsSync(p));
  return ctx.quick ? all.slice(0, 1) : all;
}

/** A program of test/fixtures/NAME.c, built against glibc in the scratch directory and run with args(quick). */
function fixtureProgram(name: string, what: string, args: (quick: boolean) => string[]): Program {
  const source = join('test', 'fixtures', `${name}.c`);
  return {
    name,
    what: `${source}: ${what}`,
    requires: ['gcc'],
    unavailable: (ctx) => (existsSync(join(ctx.root, source)) ? undefined : `${source} is not in this package`),
    prepare: (ctx) => {
      const build = spawnSync('gcc', ['-O2', '-pthread', '-o', join(ctx.scratch, name), join(ctx.root, source)], { encoding: 'utf8' });
      if (build.status !== 0) throw new Error(`gcc could not build ${source}:\n${build.stderr}`);
    },
    invocation: (ctx) => ({ argv: [join(ctx.scratch, name), ...args(ctx.quick)], cwd: ctx.scratch, env: {}, outputs: [] }),
  };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export const programs: Program[] = [
  {
    name: 'python3',
    what: 'python3 (PYTHONMALLOC=malloc): build, sort and dump a dict of strings',
    requires: ['python3'],
    unavailable: (ctx) => (ctx.python ? undefined : 'python3 did not say where its binary is'),
    prepare: (ctx) => copyScript('dict.py', ctx.scratch),
    invocation: (ctx) => ({
      argv: [ctx.python!, join(ctx.scratch, 'dict.py'), String(ctx.quick ? 100_000 : 1_500_000)],
      cwd: ctx.scratch,
      env: { PYTHONMALLOC: 'malloc', PYTHONHASHSEED: '0', PYTHONDONTWRITEBYTECODE: '1' },
      outputs: [],
    }),
  },
  {
    name: 'gcc',
    what: "gcc -O2 -g compiling heaplab's own allocators",
    requires: ['gcc', 'sh'],
    unavailable: (ctx) => (gccSources(ctx).length ? undefined : 'no heaplab C source to compile'),
    prepare: (ctx) => mkdirSync(join(ctx.scratch, 'gcc'), { recursive: true }),
    invocation: (ctx, target) => {
      const dir = join(ctx.scratch, 'gcc');
      const inc = `-I${shellQuote(join(ctx.root, 'vendor'))} -I${shellQuote(join(ctx.root, 'native'))}`;
      const outputs: string[] = [];
      const steps = gccSources(ctx).map((src) => {
        const out = join(dir, `${target}-${src.split('/').pop()!.replace(/\.c$/, '.o')}`);
        outputs.push(out);
        return `gcc -O2 -g ${inc} -c ${shellQuote(src)} -o ${shellQuote(out)}`;
      });
      // same directory for every run (debug info records it), outputs named per target
      return { argv: ['sh', '-c', steps.join(' && ')], cwd: dir, env: { LC_ALL: 'C' }, outputs };
    },
  },
  {
    name: 'node',
    what: 'node: a large JSON round trip, many Buffers, gzip',
    requires: [],
    prepare: (ctx) => copyScript('heavy.cjs', ctx.scratch),
    invocation: (ctx) => ({
      argv: [process.execPath, join(ctx.scratch, 'heavy.cjs'), String(ctx.quick ? 20_000 : 300_000)],
      cwd: ctx.scratch,
      env: {},
      outputs: [],
    }),
  },
  {
    name: 'git',
    what: 'git init/add/commit/log/gc/fsck in a scratch repository',
    requires: ['git', 'sh', 'cp', 'grep'],
    prepare: (ctx) => {
      copyScript('git.sh', ctx.scratch);
      writeGitFiles(join(ctx.scratch, 'git-files'), ctx.quick ? 300 : 3000);
    },
    invocation: (ctx, target) => ({
      argv: ['sh', join(ctx.scratch, 'git.sh'), `repo-${target}`],
      cwd: ctx.scratch,
      env: {
        HOME: ctx.scratch,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_AUTHOR_NAME: 'heaplab',
        GIT_AUTHOR_EMAIL: 'sanity@heaplab.invalid',
        GIT_COMMITTER_NAME: 'heaplab',
        GIT_COMMITTER_EMAIL: 'sanity@heaplab.invalid',
        GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
        GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
        TZ: 'UTC',
        LC_ALL: 'C',
      },
      outputs: [],
    }),
  },
  {
    name: 'sort',
    what: 'sort -n over a large generated file (2 threads)',
    requires: ['sort'],
    prepare: (ctx) => writeSortInput(join(ctx.scratch, 'sort-input.txt'), ctx.quick ? 300_000 : 3_000_000),
    invocation: (ctx) => ({
      argv: ['sort', '-S', '64M', '--parallel=2', '-t', '\t', '-k2,2n', '-k1,1', join(ctx.scratch, 'sort-input.txt')],
      cwd: ctx.scratch,
      env: { LC_ALL: 'C', TMPDIR: ctx.scratch },
      outputs: [],
    }),
  },
  fixtureProgram('threads', '4 threads allocating, reallocating and freeing across threads', (quick) => ['4', String(quick ? 50_000 : 400_000)]),
  fixtureProgram('handoff', 'a producer allocates, a consumer checks and frees: every block crosses threads', (quick) => [
    '1',
    String(quick ? 50_000 : 1_000_000),
  ]),
  fixtureProgram('transfer', 'blocks swapped between threads through a shared array, threads replaced in rounds', (quick) => [
    '4',
    quick ? '3' : '10',
    String(quick ? 2_000 : 20_000),
  ]),
];

export const sanityPrograms: readonly string[] = programs.map((p) => p.name);

