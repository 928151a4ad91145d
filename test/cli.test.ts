// The heaplab command line (dist/cli.js, built by `npm run build`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { preloadLibraryPath } from '../lib/preload/preload.js';
import { PORT_CALLEE_LIMIT, PORT_INLINE_BUDGET, PORT_INLINE_LIMIT } from '../lib/ports/jit.js';
import { repoRoot } from './util.js';

const cli = join(repoRoot, 'dist', 'cli.js');
const heaplab = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('heaplab CLI', () => {
  it('--help lists the commands', () => {
    const r = heaplab('--help');
    expect(r.status).toBe(0);
    for (const c of ['run', 'which', 'sanity', 'trace']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it('an unknown command or allocator is a usage error (exit 2)', () => {
    const unknown = heaplab('frobnicate');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const badKind = heaplab('run', '--allocator', 'jemalloc', '--', 'true');
    expect(badKind.status).toBe(2);
    expect(badKind.stderr).toContain('unknown allocator "jemalloc"');
    expect(heaplab('which', 'nope').status).toBe(2);
  });

  it('bench --peer takes NAME=PATH of an existing file under a free name, else a usage error', () => {
    for (const [spec, says] of [
      ['nopath', 'wants NAME=PATH'],
      ['=/bin/true', 'wants NAME=PATH'],
      ['bad name=/bin/true', 'wants NAME=PATH'],
      ['glibc=/bin/true', 'that name is taken'],
      ['tlsf=/bin/true', 'that name is taken'],
      ['mine=/no/such/lib.so', 'no file at /no/such/lib.so'],
    ] as const) {
      const r = heaplab('bench', '--peer', spec, '--no-record');
      expect(r.status, spec).toBe(2);
      expect(r.stderr, spec).toContain(says);
    }
  });

  it('which prints the library path', () => {
    const r = heaplab('which', 'dlmalloc');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(preloadLibraryPath('dlmalloc'));
  });

  it('run passes the exit code through, and 128 + n for a signal', () => {
    expect(heaplab('run', '--allocator', 'liballoc', '--', 'sh', '-c', 'exit 7').status).toBe(7);
    expect(heaplab('run', '--', 'sh', '-c', 'kill -TERM $$').status).toBe(128 + 15);
    const r = heaplab('run', '-a', 'tlsf', '--', 'sh', '-c', 'echo "$LD_PRELOAD"');
    expect(r.stdout.trim().split(':')[0]).toBe(preloadLibraryPath('tlsf'));
  });

  it('trace records a program and prints its operation count', () => {
    const out = join(repoRoot, 'build', 'cli-test.trace');
    const r = heaplab('trace', '--out', out, '--', process.execPath, '-e', 'let a = []; for (let i = 0; i < 1000; i++) a.push(Buffer.alloc(5000)); console.log(a.length)');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('1000\n');
    const m = /heaplab trace: ([\d,]+) operations recorded/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(Number(m![1]!.replace(/,/g, ''))).toBeGreaterThan(1000);
    expect(r.stderr).toMatch(/operations +[\d,]+ +\(malloc/);
  });
});

describe('every command, as a newcomer types it', () => {
  // usage errors: exit 2, one line naming the command, no stack trace, nothing run
  const cases: Array<[string[], string]> = [
    [['compare', '--bogus'], 'heaplab compare: unknown option --bogus'],
    [['compare', '-a'], 'heaplab compare: --allocator needs a value'],
    [['compare', '--trace', 'nope'], 'heaplab compare: unknown trace nope'],
    [['compare', '--scale', 'x'], 'heaplab compare: --scale needs a positive number'],
    [['run', '--allocator'], 'heaplab run: --allocator needs a value'],
    [['run', '--allocator', 'foo', '--', 'true'], 'heaplab run: unknown allocator "foo"'],
    [['which', '--bogus'], 'heaplab which: unknown option --bogus'],
    [['which', 'a', 'b'], 'heaplab which: expected at most one allocator name'],
    [['sanity', 'x'], 'heaplab sanity: unexpected argument "x"'],
    [['sanity', '--timeout', '0'], 'heaplab sanity:'],
    [['trace', '--bogus'], 'heaplab trace: unknown option --bogus'],
    [['trace', '--out', '/tmp/', '--', 'true'], 'heaplab trace: --out /tmp/ is a folder'],
    [['trace', '--out', '/no/such/dir/x.trace', '--', 'true'], 'heaplab trace: --out /no/such/dir/x.trace: the folder /no/such/dir does not exist'],
    [['bench', '--quick=3'], 'heaplab bench: --quick takes no value'],
    [['bench', '--allocator', 'foo'], 'heaplab bench: unknown allocator "foo"'],
    [['bench', '--workload', 'nosuch'], 'heaplab bench: unknown workload "nosuch"'],
    [['frobnicate'], 'heaplab: unknown command "frobnicate"'],
  ];
  it.each(cases)('%j is a one-line usage error', (args, says) => {
    const r = heaplab(...args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(says);
    expect(r.stderr).not.toMatch(/\n\s+at |Error:|Option '/);
  });

  it('a usage error leaves the last bench report alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'heaplab-cli-'));
    const out = join(dir, 'bench.html');
    writeFileSync(out, 'the last report');
    expect(heaplab('bench', '--allocator', 'foo', '--out', out).status).toBe(2);
    expect(readFileSync(out, 'utf8')).toBe('the last report');
  });

  // a reader that closes the pipe early: no EPIPE stack trace, a clean exit
  it.each([['which'], ['--help'], ['compare', '--list'], ['bench', '--help'], ['trace', '--help']])('%j | head -1 ends quietly', (...args) => {
    for (let i = 0; i < 4; i++) {
      const r = spawnSync('sh', ['-c', `"${process.execPath}" "${cli}" ${args.join(' ')} | head -1`], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(0);
      expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.stderr).not.toMatch(/EPIPE|Error/);
    }
  });

  it('trace --json keeps stdout for the JSON: the program\'s own output goes to stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 'heaplab-cli-'));
    const r = heaplab('trace', '--json', '--out', join(dir, 't.trace'), '--', 'echo', 'hello from the program');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { exitCode: number; files: Array<{ summary: { operations: number } }> };
    expect(j.exitCode).toBe(0);
    expect(j.files.length).toBeGreaterThan(0);
    expect(r.stderr).toContain('hello from the program');
  });

  it('--json is there wherever a table is printed', () => {
    const which = heaplab('which', '--json');
    expect(Object.keys(JSON.parse(which.stdout))).toContain('tlsf+cache');
    const compare = heaplab('compare', '--json', '-a', 'tlsf', '--trace', 'small-churn', '--no-thing');
    expect(compare.status).toBe(0);
    expect(JSON.parse(compare.stdout).results[0]).toMatchObject({ kind: 'tlsf', trace: 'small-churn', equal: true });
  });

  it('compare times each trace in a process of its own, or all in one with --shared', () => {
    for (const [extra, timing] of [[[], 'own-process'], [['--shared'], 'shared']] as const) {
      const r = heaplab('compare', '--json', '-a', 'liballoc', '--trace', 'tiny-exact', '--trace', 'zero-and-one', '--no-thing', ...extra);
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as { timing: string; results: Array<{ trace: string; equal: boolean; tsNsPerOp: number }> };
      expect(j.timing).toBe(timing);
      expect(j.results.map((x) => [x.trace, x.equal])).toEqual([['tiny-exact', true], ['zero-and-one', true]]);
      for (const x of j.results) expect(x.tsNsPerOp).toBeGreaterThan(0);
    }
  });

  it('compare says which V8 inlining budget the ports ran with, and who chose it', () => {
    const run = (env: Record<string, string>, nodeArgs: string[] = []) => {
      const r = spawnSync(process.execPath, [...nodeArgs, cli, 'compare', '--json', '-a', 'dlmalloc', '--trace', 'tiny-exact', '--no-thing'], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, ...env },
      });
      expect(r.status, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { jit: unknown }).jit;
    };
    // the command starts node again to optimize on its main thread, unless told either way
    expect(run({})).toEqual({ inlineBudget: PORT_INLINE_BUDGET, inlineLimit: PORT_INLINE_LIMIT, calleeLimit: PORT_CALLEE_LIMIT, source: 'heaplab', compilesOnMainThread: true });
    expect(run({ HEAPLAB_V8_DEFAULTS: '1' })).toEqual({ inlineBudget: 920, inlineLimit: 4600, calleeLimit: 460, source: 'v8-default', compilesOnMainThread: false });
    expect(run({}, ['--max-inlined-bytecode-size-cumulative=1500'])).toEqual({ inlineBudget: 1500, inlineLimit: 4600, calleeLimit: 460, source: 'process', compilesOnMainThread: true });
    expect(run({}, ['--max_inlined_bytecode_size_cumulative=1200'])).toEqual({ inlineBudget: 1200, inlineLimit: 4600, calleeLimit: 460, source: 'process', compilesOnMainThread: true });
    expect(run({}, ['--max-inlined-bytecode-size-absolute=9000'])).toEqual({ inlineBudget: 920, inlineLimit: 9000, calleeLimit: 460, source: 'process', compilesOnMainThread: true });
    expect(run({}, ['--max-inlined-bytecode-size=800'])).toEqual({ inlineBudget: 920, inlineLimit: 4600, calleeLimit: 800, source: 'process', compilesOnMainThread: true });
    expect(run({}, ['--concurrent-recompilation'])).toEqual({ inlineBudget: PORT_INLINE_BUDGET, inlineLimit: PORT_INLINE_LIMIT, calleeLimit: PORT_CALLEE_LIMIT, source: 'heaplab', compilesOnMainThread: false });
    const text = heaplab('compare', '-a', 'tlsf', '--trace', 'tiny-exact', '--no-thing');
    expect(text.stdout).toMatch(new RegExp(`V8 inlining budget for the ports: ${PORT_INLINE_BUDGET} bytes of bytecode, at most ${PORT_INLINE_LIMIT} in one function, callees of up to ${PORT_CALLEE_LIMIT} .*optimized on the main thread`));
  });

  it('compare runs where node may not compile code from strings (the ports then share one replay loop)', () => {
    const r = spawnSync(process.execPath, ['--disallow-code-generation-from-strings', cli, 'compare', '--json', '-a', 'tlsf', '--trace', 'tiny-exact', '--no-thing'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).results[0]).toMatchObject({ kind: 'tlsf', trace: 'tiny-exact', equal: true });
  });
});
