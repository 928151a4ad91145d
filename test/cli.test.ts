// The heaplab command line (dist/cli.js, built by `npm run build`).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { preloadLibraryPath } from '../lib/preload/preload.js';
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
