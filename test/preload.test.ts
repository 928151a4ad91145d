// The LD_PRELOAD libraries: the C test program (test/preload/preload_test.c) under
// each library, the trace they record, and a real program's output on them.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { preloadLibraryPath, preloadTestProgramPath } from '../lib/preload/preload.js';
import { allocatorNames } from '../lib/kinds.js';
import { TraceFormatError, readTrace, summarizeTrace, traceFiles, writeTrace } from '../lib/trace/file.js';
import { TraceBuilder } from '../lib/trace/trace.js';
import { Op } from '../lib/trace/trace.js';
import { repoRoot } from './util.js';

const scratch = mkdtempSync(join(tmpdir(), 'heaplab-preload-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env['HEAPLAB_TRACE'];
  delete env['HEAPLAB_TRACE_CHILD'];
  for (const [k, v] of Object.entries(extra)) env[k] = v;
  return env;
}

function runTest(preload: string | undefined, args: string[] = [], extra: Record<string, string> = {}) {
  const env = envWith(extra);
  if (preload) env['LD_PRELOAD'] = preload;
  else delete env['LD_PRELOAD'];
  return spawnSync(preloadTestProgramPath(), args, { encoding: 'utf8', env, timeout: 60_000 });
}

function summary(stdout: string): { passed: number; failed: number } | null {
  const last = stdout.trim().split('\n').pop() ?? '';
  const m = /^preload_test: (\d+) passed, (\d+) failed$/.exec(last);
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : null;
}

describe('preload_test.c on glibc (the checks themselves)', () => {
  it('passes without a preload library', () => {
    const run = runTest(undefined);
    expect(summary(run.stdout), run.stdout + run.stderr).toMatchObject({ failed: 0 });
    expect(run.stdout).toContain('allocator: glibc');
    expect(run.status).toBe(0);
  });
});

describe.each(allocatorNames)('libheaplab-%s.so', (kind) => {
  it('passes every check of preload_test.c (edge cases, threads, fork)', () => {
    const library = preloadLibraryPath(kind);
    const run = runTest(library);
    const s = summary(run.stdout);
    expect(s, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}\nsignal: ${run.signal}`).not.toBeNull();
    expect(s!.failed, run.stdout).toBe(0);
    expect(s!.passed).toBeGreaterThan(40);
    expect(run.stdout).toContain(`allocator: ${library}`);
    // check_invalid's pointers: refused, and said once on stderr
    expect(run.stderr.match(/heaplab: free\(0x[0-9a-f]+\): not a block any allocator returned/g) ?? []).toHaveLength(1);
    expect(run.status).toBe(0);
  });

  it('records a fixed call sequence as the documented trace', () => {
    const file = join(scratch, `seq-${kind}.trace`);
    const run = runTest(preloadLibraryPath(kind), ['trace'], { HEAPLAB_TRACE: file });
    expect(run.status, run.stderr).toBe(0);
    const trace = readTrace(file);
    expect(trace.header).toMatchObject({ allocator: kind, program: 'heaplab-preload', descendant: false, version: 1 });
    expect(trace.droppedBytes).toBe(0);
    const start = Array.from(trace.size).findIndex((s, i) => s === 100001 && trace.op[i] === Op.malloc);
    expect(start).toBeGreaterThanOrEqual(0);
    const got = [];
    for (let i = start; i < start + 11; i++) {
      got.push([trace.op[i], trace.id[i], trace.size[i], trace.alignLog2[i], trace.thread[i]]);
    }
    const a = trace.id[start]!;
    const [b, c, d, e] = [a + 1, a + 2, a + 3, a + 4];
    const { malloc, calloc, memalign, realloc, free } = Op;
    expect(got).toEqual([
      [malloc, a, 100001, 4, 0],
      [calloc, b, 300006, 4, 0],
      [memalign, c, 100003, 12, 0],
      [memalign, d, 100004, 8, 0],
      [realloc, a, 100005, 4, 0],
      [free, b, 0, 4, 0],
      [free, c, 0, 4, 0],
      [malloc, e, 100006, 4, 0],
      [free, a, 0, 4, 0],
      [free, e, 0, 4, 0],
      [free, d, 0, 4, 0],
    ]);
    const s = summarizeTrace(trace);
    expect(s.operations).toBe(trace.op.length);
    expect(s.byOp.free).toBeGreaterThanOrEqual(5);
  });

  it('gives a program the same output as glibc (python3)', () => {
    const code = 'print(sum(len(str(i)) for i in range(10**6)))';
    const plain = spawnSync('python3', ['-c', code], { encoding: 'utf8', env: envWith({}) });
    const env = envWith({ LD_PRELOAD: preloadLibraryPath(kind) });
    const preloaded = spawnSync('python3', ['-c', code], { encoding: 'utf8', env });
    expect(plain.stdout).toBe('5888890\n');
    expect(preloaded.stdout).toBe(plain.stdout);
    expect(preloaded.status).toBe(0);
  });

  it('gives memory back once everything is freed and malloc_trim is called', () => {
    const exe = join(scratch, 'trim');
    execFileSync('cc', ['-O1', '-o', exe, join(repoRoot, 'test', 'fixtures', 'trim.c')]);
    const r = spawnSync(exe, [], { encoding: 'utf8', env: envWith({ LD_PRELOAD: preloadLibraryPath(kind) }) });
    expect(r.status).toBe(0);
    const [peak, , trimmed] = r.stdout.trim().split(' ').map(Number);
    expect(peak).toBeGreaterThan(40_000); // ~80 MB touched
    expect(trimmed).toBeLessThan(peak! / 4);
  });

  it('grows a big block by realloc in place of a copy, with the page cache on, off or misnamed', () => {
    // a bytearray grown 4 KiB at a time to 256 MiB: realloc of a block on its own pages
    const code = 'b = bytearray()\nfor i in range(65536): b += bytes([i % 251]) * 4096\nprint(len(b), sum(b[::65536]))';
    const expected = spawnSync('python3', ['-c', code], { encoding: 'utf8', env: envWith({}) });
    expect(expected.status).toBe(0);
    for (const cache of ['on', 'off', 'floor=1M,percent=5,decay=10', 'bogus']) {
      const env = envWith({ LD_PRELOAD: preloadLibraryPath(kind), HEAPLAB_PAGE_CACHE: cache });
      const r = spawnSync('python3', ['-c', code], { encoding: 'utf8', env, timeout: 60_000 });
      expect(r.stdout, cache).toBe(expected.stdout);
      expect(r.status, cache).toBe(0);
      expect(r.stderr.includes('HEAPLAB_PAGE_CACHE not understood'), cache).toBe(cache === 'bogus');
    }
  });
});

describe('trace files', () => {
  it('writeTrace writes the recorder\'s format: readTrace gives back every op, id, size and alignment', () => {
    const b = new TraceBuilder();
    const a = b.alloc(100);
    const big = b.alloc(2 ** 33 + 48, 4, true);
    const aligned = b.alloc(7, 12);
    b.realloc(a, 5000);
    b.free(big);
    b.free(aligned);
    const trace = b.build('round-trip');
    const file = join(scratch, 'round-trip.trace');
    writeTrace(file, trace, { allocator: 'tlsf', program: 'a-program-name-longer-than-15' });
    const back = readTrace(file);
    expect(Array.from(back.op)).toEqual(Array.from(trace.op));
    expect(Array.from(back.id)).toEqual(Array.from(trace.id));
    expect(Array.from(back.size)).toEqual(Array.from(trace.size));
    expect(Array.from(back.alignLog2)).toEqual(Array.from(trace.alignLog2));
    expect(back.maxId).toBe(trace.maxId);
    expect(back.header).toMatchObject({ allocator: 'tlsf', program: 'a-program-name-', descendant: false });
    expect(back.droppedBytes).toBe(0);
  });

  it('a program that execs another: FILE for the first image, FILE.<pid> for the next', () => {
    const file = join(scratch, 'exec.trace');
    const program = preloadTestProgramPath();
    const env = envWith({ HEAPLAB_TRACE: file, LD_PRELOAD: preloadLibraryPath('tlsf') });
    const run = spawnSync('sh', ['-c', `exec '${program}' trace`], { encoding: 'utf8', env });
    expect(run.status, run.stderr).toBe(0);
    const files = traceFiles(file);
    expect(files.length).toBe(2);
    const first = readTrace(files[0]!);
    const second = readTrace(files[1]!);
    expect(first.header.program).toBe('sh');
    expect(second.header).toMatchObject({ program: 'heaplab-preload', descendant: true, pid: first.header.pid });
    // the shell's image never ran its destructor: its last window is dropped, not damaged
    expect(first.droppedBytes % 16).toBe(0);
    expect(Array.from(second.size)).toContain(100001);
  });

  it('a multi-threaded trace is consistent: new ids once, frees and reallocs of live blocks only', () => {
    const exe = join(scratch, 'threads');
    const build = spawnSync('gcc', ['-O2', '-pthread', '-o', exe, join(repoRoot, 'test', 'fixtures', 'threads.c')], { encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
    const file = join(scratch, 'threads.trace');
    const env = envWith({ HEAPLAB_TRACE: file, LD_PRELOAD: preloadLibraryPath('dlmalloc') });
    const run = spawnSync(exe, ['4', '20000'], { encoding: 'utf8', env });
    expect(run.status, run.stderr).toBe(0);
    const t = readTrace(file);
    const live = new Uint8Array(t.maxId + 1);
    const seen = new Uint8Array(t.maxId + 1);
    let bad = 0;
    for (let i = 0; i < t.op.length; i++) {
      const op = t.op[i]!;
      const id = t.id[i]!;
      if (op <= Op.memalign) {
        if (seen[id]) bad++;
        seen[id] = live[id] = 1;
      } else if (op === Op.realloc) {
        if (!live[id]) bad++;
      } else {
        if (!live[id]) bad++;
        live[id] = 0;
      }
    }
    expect(bad).toBe(0);
    const s = summarizeTrace(t);
    expect(s.threads).toBe(5); // main and 4 workers
    expect(s.byOp.memalign).toBeGreaterThan(1000);
    expect(s.operations).toBeGreaterThan(100_000);
  });

  it('rejects a file that is not a trace, and a damaged one', () => {
    const bad = join(scratch, 'bad.trace');
    writeFileSync(bad, 'not a trace at all, not at all, not at all, not at all, not at all');
    expect(() => readTrace(bad)).toThrow(TraceFormatError);
    const header = Buffer.alloc(64);
    header.write('HLTRACE', 0);
    header.writeUInt32LE(1, 8);
    header.writeUInt32LE(16, 12);
    const rec = (op: number, id: number, size: number) => {
      const r = Buffer.alloc(16);
      r.writeUInt32LE(id, 0);
      r.writeUInt8(op, 4);
      r.writeUInt8(4, 5);
      r.writeBigUInt64LE(BigInt(size), 8);
      return r;
    };
    const good = join(scratch, 'zero-tail.trace');
    writeFileSync(good, Buffer.concat([header, rec(1, 0, 10), rec(5, 0, 0), Buffer.alloc(48), Buffer.alloc(7)]));
    const t = readTrace(good);
    expect(Array.from(t.op)).toEqual([1, 5]);
    expect(t.droppedBytes).toBe(55);
    const damaged = join(scratch, 'damaged.trace');
    writeFileSync(damaged, Buffer.concat([header, rec(1, 0, 10), Buffer.alloc(16), rec(5, 0, 0)]));
    expect(() => readTrace(damaged)).toThrow(/damaged/);
  });
});
