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
} from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { AllocatorName } from '../kinds.js';
import { allocatorNames } from '../kinds.js';
import { PreloadLibraryNotFoundError, preloadLibraryPath } from '../preload/preload.js';
import { packageRoot } from '../util/package-root.js';
import { copyScript, programs, type Context, type Target, type Program } from './programs.js';

export type { Target } from './programs.js';
export { sanityPrograms } from './programs.js';


export interface SanityOptions {
  /** The short version (what `npm test` runs): smaller inputs. */
  quick?: boolean;
  /** Allocators to test (default: all three). */
  allocators?: readonly AllocatorName[];
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
  target: Target;
  /** Undefined while the run is going on. */
  result?: RunResult;
}

export interface RunResult {
  program: string;
  target: Target;
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
  targets: Target[];
  programs: string[];
  scratch: string;
  quick: boolean;
}


/* ---- running one program ---------------------------------------------------- */


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
  target: Target,
  library: string | undefined,
  timeoutSeconds: number,
): Promise<RawRun> {
  const inv = program.invocation(ctx, target);
  const base = join(ctx.scratch, 'runs', `${program.name}-${target}`);
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
  const allocators = options.allocators ?? allocatorNames;
  const chosen = options.programs ? programs.filter((p) => options.programs!.includes(p.name)) : programs;
  const timeoutSeconds = options.timeoutSeconds ?? (quick ? 60 : 300);
  const scratch = mkdtempSync(join(tmpdir(), 'heaplab-sanity-'));
  const ctx: Context = { root, scratch, quick, python: realPython() };
  if (ctx.python) copyScript('rusage.py', scratch);

  const libraries = new Map<AllocatorName, string | Error>();
  for (const kind of allocators) {
    try {
      libraries.set(kind, preloadLibraryPath(kind, root));
    } catch (error) {
      if (!(error instanceof PreloadLibraryNotFoundError)) throw error;
      libraries.set(kind, error);
    }
  }
  const targets: Target[] = ['glibc', ...allocators];
  const results: RunResult[] = [];
  const total = chosen.length * targets.length;
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
      for (const target of targets) {
        index++;
        options.onProgress?.({ index, total, program: program.name, target });
        let result: RunResult;
        if (why !== undefined) {
          result = { program: program.name, target, status: 'skip', reason: why, seconds: NaN, maxRssKiB: NaN, exitCode: -1 };
        } else if (!prepared) {
          result = { program: program.name, target, status: 'fail', reason: `setup failed: ${prepareError}`, seconds: NaN, maxRssKiB: NaN, exitCode: -1 };
        } else if (target !== 'glibc' && libraries.get(target) instanceof Error) {
          result = { program: program.name, target, status: 'fail', reason: 'library not built (npm run build:native)', seconds: NaN, maxRssKiB: NaN, exitCode: -1 };
        } else if (target !== 'glibc' && (!reference || reference.result.status !== 'pass')) {
          result = { program: program.name, target, status: 'fail', reason: 'no reference: the glibc run failed', seconds: NaN, maxRssKiB: NaN, exitCode: -1 };
        } else {
          const library = target === 'glibc' ? undefined : (libraries.get(target) as string);
          const run = await runOnce(ctx, program, target, library, timeoutSeconds);
          const inv = program.invocation(ctx, target);
          const hashes = await Promise.all([run.stdout, ...inv.outputs].map(hashFile));
          result = {
            program: program.name,
            target,
            status: 'pass',
            seconds: run.seconds,
            maxRssKiB: run.maxRssKiB,
            exitCode: run.exitCode,
          };
          if (run.timedOut) {
            result.status = 'fail';
            result.reason = `timed out after ${timeoutSeconds} s`;
          } else if (target === 'glibc') {
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
        options.onProgress?.({ index, total, program: program.name, target, result });
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
    targets,
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
  if (r.target === 'glibc') {
    return r.status === 'pass' ? `${r.seconds.toFixed(2)}s ${rss(r.maxRssKiB)}` : `FAIL`;
  }
  const ratio = r.timeRatio !== undefined && Number.isFinite(r.timeRatio) ? `${r.timeRatio.toFixed(2)}×` : '-';
  return `${r.status === 'pass' ? 'pass' : 'FAIL'} ${ratio} ${rss(r.maxRssKiB)}`;
}

/** The program × allocator table, and the reasons of failures and skips below it. */
export function formatSanityTable(report: SanityReport): string {
  const header = ['program', ...report.targets.map((e) => (e === 'glibc' ? 'glibc (time, RSS)' : `${e} (vs glibc, RSS)`))];
  const rows = report.programs.map((p) => [
    p,
    ...report.targets.map((e) => cell(report.results.find((r) => r.program === p && r.target === e))),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  const notes = report.results.filter((r) => r.status !== 'pass' && r.reason);
  if (notes.length) {
    out.push('');
    for (const r of notes) out.push(`${r.status === 'skip' ? 'skip' : 'FAIL'} ${r.program} on ${r.target}: ${r.reason!.replace(/\n/g, '\n    ')}`);
  }
  const failed = report.results.filter((r) => r.status === 'fail').length;
  const passed = report.results.filter((r) => r.status === 'pass').length;
  out.push('', `sanity${report.quick ? ' (quick)' : ''}: ${passed} passed, ${failed} failed`);
  return out.join('\n');
}

