/**
 * heaplab sanity [--quick] — the classic sanity test of an allocator: run real
 * programs on it (LD_PRELOAD) and compare what they produce, byte for byte, with
 * the same programs on glibc's malloc.
 *
 * Each program runs once on glibc (the reference) and once per preload library,
 * one run at a time, under a small rusage wrapper (python3) that reports its
 * wall time and the peak RSS of the program and everything it started. A run
 * passes when its exit status, its stdout and the files it writes are the same
 * as glibc's; a crash, a different byte or a timeout is a failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants as fsConstants,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { AllocatorKind } from '../kinds.js';
import { PreloadLibraryNotFoundError, isPreloadKind, preloadLibraryPath } from '../preload/preload.js';
import { parseOptions, usageFailure, UsageError } from './common.js';
import { allocatorKinds } from '../kinds.js';
import { packageRoot } from '../util/package-root.js';

const USAGE = 'sanity [--quick] [--allocator a,b] [--program p,q] [--keep] [--timeout SECONDS]';

/** 'glibc' (the reference) or an allocator. */
export type Engine = 'glibc' | AllocatorKind;

export interface SanityOptions {
  /** The short version (what `npm test` runs): smaller inputs. */
  quick?: boolean;
  /** Allocators to test (default: all three). */
  allocators?: readonly AllocatorKind[];
  /** Programs to run, by name (default: all). */
  programs?: readonly string[];
  /** Keep the scratch directory (its path is in the report). */
  keep?: boolean;
  /** Seconds one run may take before it is killed (default: 60 quick, 300 full). */
  timeoutSeconds?: number;
  /** Package root: where the libraries and heaplab's own sources are. */
  root?: string;
  /** Called with a line of progress before each run and after it. */
  onProgress?: (event: ProgressEvent) => void;
}

export interface ProgressEvent {
  index: number;
  total: number;
  program: string;
  engine: Engine;
  /** Undefined while the run is going on. */
  result?: RunResult;
}

export interface RunResult {
  program: string;
  engine: Engine;
  /** skip: the program is not installed here (no verdict). */
  status: 'pass' | 'fail' | 'skip';
  /** Why it failed or was skipped. */
  reason?: string;
  seconds: number;
  /** Peak resident set of the program and its children, KiB (NaN if unknown). */
  maxRssKiB: number;
  /** Exit code, or 128 + signal. */
  exitCode: number;
  /** Time divided by glibc's. */
  timeRatio?: number;
}

export interface SanityReport {
  ok: boolean;
  results: RunResult[];
  engines: Engine[];
  programs: string[];
  scratch: string;
  quick: boolean;
}

/* ---- the programs ---------------------------------------------------------- */

interface Context {
  root: string;
  scratch: string;
  quick: boolean;
  /** The real python3 binary (not a pyenv shim), or null. */
  python: string | null;
}

interface Invocation {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** Files the run writes that must equal glibc's run's (paths for this engine). */
  outputs: string[];
}

interface Program {
  name: string;
  what: string;
  /** Executables that must be on PATH, else the program is skipped. */
  requires: string[];
  /** Runs once, on glibc, before the first run: scripts, inputs, builds. */
  prepare?: (ctx: Context) => void;
  invocation: (ctx: Context, engine: Engine) => Invocation;
  /** Why the program cannot run here, if it cannot (after requires). */
  unavailable?: (ctx: Context) => string | undefined;
}

const PYTHON_SCRIPT = `import hashlib, sys
n = int(sys.argv[1])
words = {}
for i in range(n):
    key = "k%08x-%s" % ((i * 2654435761) & 0xffffffff, "ab" * (i % 13))
    words[key] = str(i * 7919) * (1 + i % 4)
keys = sorted(words, key=lambda k: (k[::-1], len(k)))
text = "\\n".join("%s=%s" % (k, words[k]) for k in keys)
again = dict(line.split("=", 1) for line in text.split("\\n"))
assert again == words
print(len(words), len(text), hashlib.sha256(text.encode()).hexdigest())
for k in keys[:: max(1, n // 25)]:
    print(k, words[k][:24])
`;

const NODE_SCRIPT = `'use strict';
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const n = Number(process.argv[2]);
const items = [];
for (let i = 0; i < n; i++) {
  items.push({ id: i, name: 'item-' + i, tags: [i % 7, i % 11, 't' + (i % 13)], nested: { a: i * 1.5, b: String(i).repeat(1 + (i % 5)) } });
}
const text = JSON.stringify(items);
const back = JSON.parse(text);
const again = JSON.stringify(back);
if (again !== text) throw new Error('JSON round trip changed the text');
const hash = crypto.createHash('sha256').update(again);
const keep = [];
let bytes = 0;
for (let i = 0; i < n; i++) {
  const b = Buffer.alloc(16 + ((i * 7919) % 20000), i & 255);
  bytes += b.length;
  keep.push(b);
  if (keep.length > 3000) {
    for (const old of keep.splice(0, 1500)) hash.update(old.subarray(0, 64));
  }
}
for (const b of keep) hash.update(b);
const packed = zlib.gzipSync(Buffer.from(text), { level: 6 });
const unpacked = zlib.gunzipSync(packed).toString();
if (unpacked !== text) throw new Error('gzip round trip changed the text');
console.log(items.length, text.length, bytes, hash.digest('hex'));
`;

const GIT_SCRIPT = `set -e
repo="$1"
rm -rf "$repo"
mkdir "$repo"
cd "$repo"
git init -q
cp -R ../git-files/v1/. .
git add -A
git commit -q -m "first commit"
cp -R ../git-files/v2/. .
git rm -q -r --cached d3 >/dev/null
rm -rf d3
git add -A
git commit -q -m "second commit: edits, a removed directory"
git log --stat --format='%H %an <%ae> %ad%n%s'
git diff --stat HEAD~1 HEAD
git -c pack.threads=2 gc -q
git count-objects -v | grep -E '^(count|in-pack|packs)'
git fsck --full --no-progress
git log -p --format=%H -- d1 | git hash-object --stdin
`;

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

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const programs: Program[] = [
  {
    name: 'python3',
    what: 'python3 (PYTHONMALLOC=malloc): build, sort and dump a dict of strings',
    requires: ['python3'],
    unavailable: (ctx) => (ctx.python ? undefined : 'python3 did not say where its binary is'),
    prepare: (ctx) => writeFileSync(join(ctx.scratch, 'dict.py'), PYTHON_SCRIPT),
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
    invocation: (ctx, engine) => {
      const dir = join(ctx.scratch, 'gcc');
      const inc = `-I${shellQuote(join(ctx.root, 'vendor'))} -I${shellQuote(join(ctx.root, 'native'))}`;
      const outputs: string[] = [];
      const steps = gccSources(ctx).map((src) => {
        const out = join(dir, `${engine}-${src.split('/').pop()!.replace(/\.c$/, '.o')}`);
        outputs.push(out);
        return `gcc -O2 -g ${inc} -c ${shellQuote(src)} -o ${shellQuote(out)}`;
      });
      // same directory for every run (debug info records it), outputs named per engine
      return { argv: ['sh', '-c', steps.join(' && ')], cwd: dir, env: { LC_ALL: 'C' }, outputs };
    },
  },
  {
    name: 'node',
    what: 'node: a large JSON round trip, many Buffers, gzip',
    requires: [],
    prepare: (ctx) => writeFileSync(join(ctx.scratch, 'heavy.cjs'), NODE_SCRIPT),
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
      writeFileSync(join(ctx.scratch, 'git.sh'), GIT_SCRIPT);
      writeGitFiles(join(ctx.scratch, 'git-files'), ctx.quick ? 300 : 3000);
    },
    invocation: (ctx, engine) => ({
      argv: ['sh', join(ctx.scratch, 'git.sh'), `repo-${engine}`],
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
  {
    name: 'threads',
    what: 'test/fixtures/threads.c: 4 threads allocating, reallocating and freeing across threads',
    requires: ['gcc'],
    unavailable: (ctx) =>
      existsSync(join(ctx.root, 'test', 'fixtures', 'threads.c')) ? undefined : 'test/fixtures/threads.c is not in this package',
    prepare: (ctx) => {
      const build = spawnSync(
        'gcc',
        ['-O2', '-pthread', '-o', join(ctx.scratch, 'threads'), join(ctx.root, 'test', 'fixtures', 'threads.c')],
        { encoding: 'utf8' },
      );
      if (build.status !== 0) throw new Error(`gcc could not build test/fixtures/threads.c:\n${build.stderr}`);
    },
    invocation: (ctx) => ({
      argv: [join(ctx.scratch, 'threads'), '4', String(ctx.quick ? 50_000 : 400_000)],
      cwd: ctx.scratch,
      env: {},
      outputs: [],
    }),
  },
];

export const sanityPrograms: readonly string[] = programs.map((p) => p.name);

/* ---- running one program ---------------------------------------------------- */

/* The rusage wrapper: runs argv (LD_PRELOAD from HEAPLAB_SANITY_PRELOAD, so the
 * wrapper itself stays on glibc) and writes "status seconds maxrss_kib". */
const RUSAGE_WRAPPER = `import os, resource, subprocess, sys, time
out, argv = sys.argv[1], sys.argv[2:]
env = dict(os.environ)
preload = env.pop("HEAPLAB_SANITY_PRELOAD", "")
if preload:
    env["LD_PRELOAD"] = preload
start = time.perf_counter()
try:
    status = subprocess.call(argv, env=env)
except OSError as e:
    sys.stderr.write("heaplab sanity: cannot run %s: %s\\n" % (argv[0], e))
    status = 127
elapsed = time.perf_counter() - start
with open(out, "w") as f:
    f.write("%d %.6f %d\\n" % (status, elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
`;

interface RawRun {
  exitCode: number;
  seconds: number;
  maxRssKiB: number;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

function signalName(code: number): string {
  if (code <= 128) return '';
  const n = code - 128;
  const name = Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
  return name ? ` (${name})` : '';
}

async function runOnce(
  ctx: Context,
  program: Program,
  engine: Engine,
  library: string | undefined,
  timeoutSeconds: number,
): Promise<RawRun> {
  const inv = program.invocation(ctx, engine);
  const base = join(ctx.scratch, 'runs', `${program.name}-${engine}`);
  mkdirSync(join(ctx.scratch, 'runs'), { recursive: true });
  const stdout = `${base}.stdout`;
  const stderr = `${base}.stderr`;
  const usage = `${base}.rusage`;
  rmSync(usage, { force: true });
  for (const o of inv.outputs) rmSync(o, { force: true });
  const env: NodeJS.ProcessEnv = { ...process.env, ...inv.env };
  delete env['LD_PRELOAD'];
  delete env['NODE_OPTIONS'];
  delete env['HEAPLAB_TRACE'];
  delete env['HEAPLAB_TRACE_CHILD'];
  if (library) env['HEAPLAB_SANITY_PRELOAD'] = library;
  else delete env['HEAPLAB_SANITY_PRELOAD'];

  const outFd = openSync(stdout, 'w');
  const errFd = openSync(stderr, 'w');
  const started = process.hrtime.bigint();
  let argv: string[];
  if (ctx.python) {
    argv = [ctx.python, join(ctx.scratch, 'rusage.py'), usage, ...inv.argv];
  } else {
    // no python3: time it from here, no RSS; LD_PRELOAD set directly
    argv = inv.argv;
    if (library) env['LD_PRELOAD'] = library;
  }
  const result = await new Promise<{ code: number; timedOut: boolean }>((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: inv.cwd,
      env,
      stdio: ['ignore', outFd, errFd],
      detached: true,
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutSeconds * 1000);
    child.on('error', () => {
      clearTimeout(timer);
      resolve({ code: 127, timedOut });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // the wrapper's own group may still hold stragglers (a timed-out child)
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* none left */
      }
      resolve({ code: code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0), timedOut });
    });
  });
  closeSync(outFd);
  closeSync(errFd);
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  let exitCode = result.code;
  let seconds = elapsed;
  let maxRssKiB = NaN;
  if (ctx.python && existsSync(usage)) {
    const [status, secs, rss] = readFileSync(usage, 'utf8').trim().split(/\s+/).map(Number);
    exitCode = status! < 0 ? 128 - status! : status!;
    seconds = secs!;
    maxRssKiB = rss!;
  }
  return { exitCode, seconds, maxRssKiB, timedOut: result.timedOut, stdout, stderr };
}

async function hashFile(path: string): Promise<string | null> {
  if (!existsSync(path)) return null;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function tail(path: string, lines = 6): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function onPath(name: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), fsConstants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

function realPython(): string | null {
  if (!onPath('python3')) return null;
  const env = { ...process.env };
  delete env['LD_PRELOAD'];
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', env });
  const path = r.status === 0 ? r.stdout.trim() : '';
  return path && existsSync(path) ? path : null;
}

/* ---- the whole run ------------------------------------------------------------ */

export async function runSanity(options: SanityOptions = {}): Promise<SanityReport> {
  const quick = options.quick ?? false;
  const root = options.root ?? packageRoot;
  const allocators = options.allocators ?? allocatorKinds;
  const chosen = options.programs ? programs.filter((p) => options.programs!.includes(p.name)) : programs;
  const timeoutSeconds = options.timeoutSeconds ?? (quick ? 60 : 300);
  const scratch = mkdtempSync(join(tmpdir(), 'heaplab-sanity-'));
  const ctx: Context = { root, scratch, quick, python: realPython() };
  if (ctx.python) writeFileSync(join(scratch, 'rusage.py'), RUSAGE_WRAPPER);

  const libraries = new Map<AllocatorKind, string | Error>();
  for (const kind of allocators) {
    try {
      libraries.set(kind, preloadLibraryPath(kind, root));
    } catch (error) {
      if (!(error instanceof PreloadLibraryNotFoundError)) throw error;
      libraries.set(kind, error);
    }
  }
  const engines: Engine[] = ['glibc', ...allocators];
  const results: RunResult[] = [];
  const total = chosen.length * engines.length;
  let index = 0;
  try {
    for (const program of chosen) {
      const missing = program.requires.filter((r) => !onPath(r));
      const why = missing.length ? `${missing.join(', ')} not installed` : program.unavailable?.(ctx);
      let prepared = why === undefined;
      let prepareError: string | undefined;
      if (prepared) {
        try {
          program.prepare?.(ctx);
        } catch (error) {
          prepared = false;
          prepareError = (error as Error).message;
        }
      }
      let reference: { run: RawRun; hashes: (string | null)[]; result: RunResult } | undefined;
      for (const engine of engines) {
        index++;
        options.onProgress?.({ index, total, program: program.name, engine });
        let result: RunResult;
        if (why !== undefined) {
          result = { program: program.name, engine, status: 'skip', reason: why, seconds: NaN, maxRssKiB: NaN, exitCode: -1 };
        } else if (!prepared) {
          result = { program: program.name, engine, status: 'fail', reason: `setup failed: ${prepareError}`, seconds: NaN, maxRssKiB: NaN, exitCode: -1 };
        } else if (engine !== 'glibc' && libraries.get(engine) instanceof Error) {
          result = { program: program.name, engine, status: 'fail', reason: 'library not built (npm run build:native)', seconds: NaN, maxRssKiB: NaN, exitCode: -1 };
        } else if (engine !== 'glibc' && (!reference || reference.result.status !== 'pass')) {
          result = { program: program.name, engine, status: 'fail', reason: 'no reference: the glibc run failed', seconds: NaN, maxRssKiB: NaN, exitCode: -1 };
        } else {
          const library = engine === 'glibc' ? undefined : (libraries.get(engine) as string);
          const run = await runOnce(ctx, program, engine, library, timeoutSeconds);
          const inv = program.invocation(ctx, engine);
          const hashes = await Promise.all([run.stdout, ...inv.outputs].map(hashFile));
          result = {
            program: program.name,
            engine,
            status: 'pass',
            seconds: run.seconds,
            maxRssKiB: run.maxRssKiB,
            exitCode: run.exitCode,
          };
          if (run.timedOut) {
            result.status = 'fail';
            result.reason = `timed out after ${timeoutSeconds} s`;
          } else if (engine === 'glibc') {
            if (run.exitCode !== 0) {
              result.status = 'fail';
              result.reason = `exit ${run.exitCode}${signalName(run.exitCode)} on glibc itself:\n${tail(run.stderr)}`;
            }
            reference = { run, hashes, result };
          } else if (reference) {
            if (run.exitCode !== reference.run.exitCode) {
              result.status = 'fail';
              result.reason = `exit ${run.exitCode}${signalName(run.exitCode)} (glibc: ${reference.run.exitCode})\n${tail(run.stderr)}`;
            } else {
              const names = ['stdout', ...inv.outputs.map((o) => o.split('/').pop()!)];
              const differ = names.filter((_, i) => hashes[i] !== reference!.hashes[i]);
              if (differ.length) {
                result.status = 'fail';
                result.reason = `output differs from glibc's: ${differ.join(', ')}`;
              }
            }
            result.timeRatio = result.seconds / reference.run.seconds;
          }
        }
        results.push(result);
        options.onProgress?.({ index, total, program: program.name, engine, result });
      }
      // the git repositories and gcc objects of this program are no longer needed
      if (!options.keep) rmSync(join(scratch, 'runs'), { recursive: true, force: true });
    }
  } finally {
    if (!options.keep) rmSync(scratch, { recursive: true, force: true });
  }
  return {
    ok: results.every((r) => r.status !== 'fail'),
    results,
    engines,
    programs: chosen.map((p) => p.name),
    scratch,
    quick,
  };
}

/* ---- the table ---------------------------------------------------------------- */

function rss(kib: number): string {
  if (!Number.isFinite(kib)) return '-';
  return kib >= 1024 * 1024 ? `${(kib / 1024 / 1024).toFixed(1)}G` : `${Math.round(kib / 1024)}M`;
}

function cell(r: RunResult | undefined): string {
  if (!r) return '';
  if (r.status === 'skip') return 'skip';
  if (r.engine === 'glibc') {
    return r.status === 'pass' ? `${r.seconds.toFixed(2)}s ${rss(r.maxRssKiB)}` : `FAIL`;
  }
  const ratio = r.timeRatio !== undefined && Number.isFinite(r.timeRatio) ? `${r.timeRatio.toFixed(2)}x` : '-';
  return `${r.status === 'pass' ? 'pass' : 'FAIL'} ${ratio} ${rss(r.maxRssKiB)}`;
}

/** The program × allocator table, and the reasons of failures and skips below it. */
export function formatSanityTable(report: SanityReport): string {
  const header = ['program', ...report.engines.map((e) => (e === 'glibc' ? 'glibc (time, RSS)' : `${e} (vs glibc, RSS)`))];
  const rows = report.programs.map((p) => [
    p,
    ...report.engines.map((e) => cell(report.results.find((r) => r.program === p && r.engine === e))),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  const notes = report.results.filter((r) => r.status !== 'pass' && r.reason);
  if (notes.length) {
    out.push('');
    for (const r of notes) out.push(`${r.status === 'skip' ? 'skip' : 'FAIL'} ${r.program} on ${r.engine}: ${r.reason!.replace(/\n/g, '\n    ')}`);
  }
  const failed = report.results.filter((r) => r.status === 'fail').length;
  const passed = report.results.filter((r) => r.status === 'pass').length;
  out.push('', `sanity${report.quick ? ' (quick)' : ''}: ${passed} passed, ${failed} failed`);
  return out.join('\n');
}

/* ---- the command ---------------------------------------------------------------- */

const HELP = `Usage: heaplab ${USAGE}

Runs real programs on glibc's malloc and on each heaplab allocator (LD_PRELOAD)
and compares their output byte for byte:
${programs.map((p) => `  ${p.name.padEnd(8)} ${p.what}`).join('\n')}

Prints a table: program x allocator, pass/FAIL, time relative to glibc, peak RSS.
Exits with 1 on any mismatch, crash or timeout.

Options:
  --quick              smaller inputs (what npm test runs; well under a minute)
  --allocator a,b      only these (${allocatorKinds.join(', ')})
  --program p,q        only these programs
  --keep               keep the scratch directory
  --timeout SECONDS    per run (default 60 with --quick, else 300)
  -h, --help           this text
`;

export async function main(argv: string[]): Promise<number> {
  const options: SanityOptions = {};
  try {
    const { values } = parseOptions({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        allocator: { type: 'string', short: 'a' },
        program: { type: 'string', short: 'p' },
        keep: { type: 'boolean' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    options.quick = values.quick ?? false;
    options.keep = values.keep ?? false;
    if (values.allocator !== undefined) {
      const names = values.allocator.split(',').filter(Boolean);
      const bad = names.filter((n) => !isPreloadKind(n));
      if (bad.length || !names.length) {
        throw new UsageError(`unknown allocator ${JSON.stringify(bad[0] ?? values.allocator)} (expected ${allocatorKinds.join(', ')})`);
      }
      options.allocators = names as AllocatorKind[];
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
    const where = `[${e.index}/${e.total}] ${e.program} on ${e.engine}`;
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
  process.stdout.write(`${formatSanityTable(report)}\n`);
  if (options.keep) process.stdout.write(`scratch directory kept: ${report.scratch}\n`);
  return report.ok ? 0 : 1;
}
