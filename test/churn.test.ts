// heaplab churn: the churn harness (native/bench/churn.c) under each allocator (lib/bench/churn.ts, lib/cli/churn.ts).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { median } from '../lib/util/stats.js';
import { defaultChurnConfig, parseChurnOutput, runChurn, type ChurnReport, type ChurnTarget } from '../lib/bench/churn.js';
import { churnProgramPath, preloadLibraryPath } from '../lib/preload/preload.js';
import { repoRoot } from './util.js';

const cli = join(repoRoot, 'dist', 'cli.js');
const heaplab = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
const small = { ...defaultChurnConfig, pairs: 20_000, live: 300, max: 4096, rounds: 2 };

describe('heaplab churn: the harness under each allocator', () => {
  let dir: string;
  let report: ChurnReport;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'heaplab-churn-test-'));
    const overlaps = join(dir, 'overlaps.so');
    execFileSync('cc', ['-shared', '-fPIC', '-O1', '-DPEER_OVERLAPS', '-o', overlaps, join(repoRoot, 'test', 'fixtures', 'peer_library.c')]);
    const notALibrary = join(dir, 'not-a-library.so');
    writeFileSync(notALibrary, 'text');
    const targets: ChurnTarget[] = [
      { name: 'glibc', kind: 'system', library: null },
      { name: 'tlsf', kind: 'heaplab', library: preloadLibraryPath('tlsf') },
      { name: 'dlmalloc+cache', kind: 'heaplab', library: preloadLibraryPath('dlmalloc+cache') },
      { name: 'overlaps', kind: 'peer', library: overlaps },
      { name: 'not-a-library', kind: 'peer', library: notALibrary },
    ];
    report = runChurn(churnProgramPath(), targets, small);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs every round of heaplab's allocators and glibc, with medians and ratios paired by round", () => {
    for (const name of ['glibc', 'tlsf', 'dlmalloc+cache']) {
      const row = report.rows.find((r) => r.name === name)!;
      expect(row.ok, row.reason).toBe(true);
      expect(row.runs).toHaveLength(2);
      expect(row.median!.mpairs).toBe(median(row.runs.map((r) => r.mpairs)));
      for (const v of [row.median!.p999, row.median!.peakRssMb, row.median!.afterRssMb]) expect(v).toBeGreaterThan(0);
      expect(row.vsGlibc!.mpairs).toBeGreaterThan(0);
    }
    const glibc = report.rows.find((r) => r.name === 'glibc')!;
    expect(glibc.vsGlibc).toEqual({ mpairs: 1, p999: 1 });
    const tlsf = report.rows.find((r) => r.name === 'tlsf')!;
    const paired = median(tlsf.runs.map((r, k) => r.mpairs / glibc.runs[k]!.mpairs));
    expect(tlsf.vsGlibc!.mpairs).toBeCloseTo(paired, 12);
  });

  it('fails an allocator whose blocks overlap (the tags catch it), and one the dynamic linker would not preload', () => {
    const overlaps = report.rows.find((r) => r.name === 'overlaps')!;
    expect(overlaps.ok).toBe(false);
    expect(overlaps.reason).toMatch(/round 1: .*tags changed/);
    expect(overlaps.runs).toHaveLength(0);
    const bogus = report.rows.find((r) => r.name === 'not-a-library')!;
    expect(bogus.ok).toBe(false);
    expect(bogus.reason).toMatch(/did not preload not-a-library\.so: malloc came from .*libc\.so/);
  });

  it('reads a crash, an exit status and a malloc from the wrong place as failures', () => {
    const t: ChurnTarget = { name: 'x', kind: 'heaplab', library: preloadLibraryPath('tlsf') };
    expect(parseChurnOutput(t, null, 'SIGSEGV', '', '')).toBe('killed by SIGSEGV');
    expect(parseChurnOutput(t, 3, null, '', 'no memory\n')).toBe('exit status 3: no memory');
    expect(parseChurnOutput(t, 0, null, 'mpairs=1 malloc_from=/lib/libc.so.6\n', '')).toMatch(/did not preload/);
    expect(parseChurnOutput({ name: 'glibc', kind: 'system', library: null }, 0, null, 'mpairs=1 malloc_from=/x/libheaplab-tlsf.so\n', '')).toMatch(/not glibc/);
    expect(parseChurnOutput(t, 0, null, 'garbage\n', '')).toMatch(/no result line/);
  });
});

describe('heaplab churn (the command)', () => {
  it('prints the table, writes the JSON, and exits 1 when a row fails', () => {
    const dir = mkdtempSync(join(tmpdir(), 'heaplab-churn-cli-'));
    try {
      const json = join(dir, 'churn.json');
      const page = join(dir, 'churn.html');
      const bad = join(dir, 'bad.so');
      writeFileSync(bad, 'text');
      const r = heaplab('churn', '-a', 'glibc,liballoc', '--peer', `bad=${bad}`, '--rounds', '1', '--pairs', '20000', '--live', '300', '--max', '4096', '--json', json, '--out', page);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toContain(`report: ${page}`);
      const html = readFileSync(page, 'utf8');
      expect(html).toMatch(/^<!doctype html>/);
      expect(html.match(/<svg /g)).toHaveLength(3);
      expect(html).toContain('<td><span class="sw" style="background:#2ca02c"></span>liballoc</td>');
      expect(html).toMatch(/<tr class="fail"><td>bad<\/td><td colspan="10">failed: round 1: the dynamic linker did not preload bad\.so/);
      expect(r.stdout).toMatch(/^heaplab churn — 300 live blocks of 8 B–4\.0 KiB .*20,000 random replacements, 1 thread; 1 round, interleaved/m);
      expect(r.stdout).toMatch(/^liballoc +[\d.]+ +[\d.]+×/m);
      expect(r.stdout).toMatch(/^bad \(failed\)/m);
      expect(r.stdout).toMatch(/bad failed: round 1: the dynamic linker did not preload bad\.so/);
      const saved = JSON.parse(readFileSync(json, 'utf8')) as ChurnReport;
      expect(saved.rows.map((row) => [row.name, row.ok])).toEqual([['glibc', true], ['liballoc', true], ['bad', false]]);
      expect(saved.config).toMatchObject({ rounds: 1, pairs: 20000, live: 300, min: 8, max: 4096, threads: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs threads and reports their total throughput', () => {
    const dir = mkdtempSync(join(tmpdir(), 'heaplab-churn-threads-'));
    const r = heaplab('churn', '-a', 'glibc,tlsf+cache', '--threads', '2', '--rounds', '1', '--pairs', '20000', '--live', '300', '--max', '4096', '-o', join(dir, 'c.html'));
    rmSync(dir, { recursive: true, force: true });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 threads; 1 round/);
    expect(r.stdout).toMatch(/^tlsf\+cache +[\d.]+ +[\d.]+× +[\d.]+$/m);
  });

  it('refuses bad options with a usage error (exit 2) before running anything', () => {
    for (const [args, message] of [
      [['--min', '4'], '--min needs a whole number from 8'],
      [['--rounds', '0'], '--rounds needs a whole number from 1 to 99'],
      [['--pairs', '1e6'], '--pairs needs a whole number'],
      [['--min', '100', '--max', '50'], '--max needs a whole number from 100'],
      [['--threads', '65'], '--threads needs a whole number from 1 to 64'],
      [['-a', 'glibc,nope'], 'unknown allocator "nope"'],
      [['--peer', 'tlsf=/bin/sh'], '--peer tlsf: that name is taken'],
      [['--peer', 'x=/no/such.so'], '--peer x: no file at /no/such.so'],
      [['stray'], 'unexpected argument "stray"'],
      [['--fill', '--live', '10000000', '--min', '1048576', '--max', '1073741824'], 'would keep about'],
    ] as const) {
      const r = heaplab('churn', ...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stdout).toBe('');
    }
  });
});
