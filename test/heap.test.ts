// The Node API, every method and every error path, over every allocator.
import { execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { allocatorKinds, createHeap, type Heap } from '../lib/index.js';
import { codeOf } from './util.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe.each(allocatorKinds)('%s heap', (kind) => {
  const heaps: Heap[] = [];
  const open = (options?: Parameters<typeof createHeap>[1]): Heap => {
    const h = createHeap(kind, options);
    heaps.push(h);
    return h;
  };
  afterEach(() => {
    for (const h of heaps.splice(0)) if (!h.destroyed) h.destroy();
  });

  it('allocates a Buffer over the block, counts it, frees and detaches it', () => {
    const h = open();
    const b = h.alloc(100);
    expect(Buffer.isBuffer(b)).toBe(true);
    expect(b.length).toBe(100);
    b.fill(7);
    expect(b.every((x) => x === 7)).toBe(true);
    expect(h.stats()).toMatchObject({ bytesInUse: 100, blocksInUse: 1, allocs: 1, frees: 0 });
    expect(h.stats().bytesMapped).toBeGreaterThan(0);
    h.free(b);
    expect(b.length).toBe(0);
    expect(b.buffer.byteLength).toBe(0);
    expect(h.stats()).toMatchObject({ bytesInUse: 0, blocksInUse: 0, allocs: 1, frees: 1, peakBytesInUse: 100 });
    h.check();
  });

  it('keeps freed page runs in the page cache, bounded, and gives them back on destroy', () => {
    const h = open({ pageCache: { floor: 4 << 20, percent: 0, decayMs: 0 } });
    const blocks = Array.from({ length: 8 }, () => h.alloc(512 << 10));
    for (const b of blocks) h.free(b);
    const s = h.stats();
    expect(s.bytesCached).toBeGreaterThan(0);
    expect(s.bytesCached).toBeLessThanOrEqual(4 << 20);
    const again = Array.from({ length: 8 }, () => h.alloc(512 << 10, { zero: true }));
    expect(h.stats().cacheHits).toBeGreaterThan(0);
    for (const b of again) expect(b.every((x) => x === 0)).toBe(true);
    for (const b of again) h.free(b);
    h.check();
    h.destroy();
    expect(h.stats().bytesCached).toBe(0);
    expect(h.stats().bytesMapped).toBe(0);
  });

  it('prefaults the runs it carves (pageCache.prefault), never a run for one block', () => {
    // MADV_POPULATE_WRITE is Linux 5.14: on an older kernel nothing is prefaulted
    const [major = 0, minor = 0] = release().split('.').map(Number);
    const populates = major > 5 || (major === 5 && minor >= 14);
    const h = open({ pageCache: { prefault: 64 << 10 } });
    const big = h.alloc(8 << 20); // a run sized for one block
    expect(h.stats().bytesPrefaulted).toBe(0);
    // small blocks until the heap has grown pools, segments or majors past them
    const small: Buffer[] = [];
    while (h.stats().pageMaps < 12) small.push(h.alloc(200));
    const s = h.stats();
    if (populates) {
      expect(s.bytesPrefaulted).toBeGreaterThan(0);
      expect(s.bytesPrefaulted).toBeLessThanOrEqual(s.pageMaps * (64 << 10)); // at most 64 KiB a run
    } else {
      expect(s.bytesPrefaulted).toBe(0);
    }
    for (const b of small) expect(b.every((x) => x === 0)).toBe(true);
    for (const b of small) h.free(b);
    h.free(big);
    h.check();
    const none = open({ pageCache: { prefault: 0 } });
    const more = Array.from({ length: 20_000 }, () => none.alloc(200));
    expect(none.stats().bytesPrefaulted).toBe(0);
    for (const b of more) none.free(b);
  });

  it('gives runs straight back with pageCache: false, and checks the option', () => {
    const h = open({ pageCache: false });
    h.free(h.alloc(2 << 20));
    expect(h.stats()).toMatchObject({ bytesCached: 0, cacheHits: 0 });
    expect(h.stats().bytesReleased).toBeGreaterThanOrEqual(2 << 20);
    for (const bad of [{ percent: 101 }, { floor: -1 }, { decayMs: 1.5 }, { prefault: -4096 }, { prefault: 0.5 }, { size: 1 }, 'yes']) {
      expect(codeOf(() => createHeap(kind, { pageCache: bad as never }))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    }
    expect(codeOf(() => createHeap(kind, { pages: 'arena', pageCache: true }))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
  });

  it('resizes a block on its own pages without a copy (pageRemaps)', () => {
    const h = open();
    let b = h.alloc(64 << 20);
    b[0] = 42;
    b[b.length - 1] = 43;
    const peakBefore = h.stats().peakBytesMapped;
    b = h.realloc(b, 96 << 20);
    expect(b[0]).toBe(42);
    expect(b[(64 << 20) - 1]).toBe(43);
    expect(h.stats().pageRemaps).toBeGreaterThan(0);
    expect(h.stats().peakBytesMapped).toBeLessThan(peakBefore + (64 << 20));
    h.free(b);
    h.check();
  });

  it('empties the thread cache as the program frees everything, so the design gives its pages back', () => {
    const plain = open();
    const cached = open({ cache: true });
    for (const h of [plain, cached]) {
      let seed = 7;
      const size = (): number => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return Math.floor(16 * 4096 ** (seed / 2 ** 32)); // 16 B – 64 KiB, log-uniform
      };
      const blocks = Array.from({ length: 4000 }, () => h.alloc(size()));
      for (let i = 0; i < 20_000; i++) {
        const k = i % blocks.length;
        h.free(blocks[k]!);
        blocks[k] = h.alloc(size());
      }
      expect(h.stats().bytesMapped).toBeGreaterThan(20 << 20);
      for (const b of blocks) h.free(b);
      h.check();
    }
    // the bins followed the heap down to nothing, and nothing pins a pool, segment or major
    expect(cached.stats().threadCacheBytes).toBe(0);
    expect(cached.stats().bytesMapped).toBeLessThan(plain.stats().bytesMapped + (1 << 20));
  });

  it('gives the pages back behind the thread cache while a few small blocks stay live (like stdio buffers)', () => {
    // bins may hold eight times what the program holds; blocks spread over every
    // pool, segment or major would each keep one from going back
    const mapped: Record<string, number> = {};
    for (const cache of [false, true]) {
      const h = open({ cache });
      const keep = [h.alloc(4096), h.alloc(1024), h.alloc(600), h.alloc(200)];
      let seed = 7;
      const size = (): number => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return Math.floor(16 * 4096 ** (seed / 2 ** 32));
      };
      const blocks = Array.from({ length: 4000 }, () => h.alloc(size()));
      for (let i = 0; i < 20_000; i++) {
        const k = (i * 7919) % blocks.length;
        h.free(blocks[k]!);
        blocks[k] = h.alloc(size());
      }
      expect(h.stats().bytesMapped).toBeGreaterThan(20 << 20);
      for (const b of blocks) h.free(b);
      h.check();
      mapped[String(cache)] = h.stats().bytesMapped;
      for (const b of keep) h.free(b);
    }
    expect(mapped['true']).toBeLessThan(mapped['false']! + (1 << 20));
  });

  it('puts the thread cache in front of the design with { cache: true }, same API, same answers', () => {
    const h = open({ cache: true });
    const blocks = Array.from({ length: 500 }, (_, i) => h.alloc(16 + (i % 40) * 50));
    blocks.forEach((b, i) => b.fill(i & 0xff));
    blocks.forEach((b, i) => expect(b.every((x) => x === (i & 0xff))).toBe(true));
    for (const b of blocks.splice(0, 250)) h.free(b);
    const again = Array.from({ length: 250 }, () => h.alloc(100, { zero: true }));
    for (const b of again) expect(b.every((x) => x === 0)).toBe(true);
    h.check();
    // the layer's own counters: most mallocs from a bin, refills and the bytes now in bins
    const s = h.stats();
    expect(s.threadCacheHits + s.threadCacheMisses).toBe(750);
    expect(s.threadCacheHits).toBeGreaterThan(s.threadCacheMisses);
    expect(s.threadCacheBytes).toBeGreaterThan(0);
    expect(s.threadCacheDoubleFrees).toBe(0);
    expect(s.threadCacheArenas).toBe(1); // one thread: one instance of the design
    expect(s.threadCacheTransfers).toBe(0); // and no other thread's blocks to take from a depot
    expect(createHeap(kind).stats().threadCacheHits).toBe(0);
    const b = again[0]!;
    h.free(b);
    expect(codeOf(() => h.free(b))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(codeOf(() => createHeap(kind, { cache: true, debug: true }))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    expect(codeOf(() => createHeap(kind, { cache: true, engine: 'ts' } as never))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    expect(codeOf(() => createHeap(kind, { cache: 'yes' as never }))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    for (const x of [...blocks, ...again.slice(1)]) h.free(x);
    h.check();
    h.destroy();
    expect(h.stats().bytesMapped).toBe(0);
  });

  it('a forged ownership record cannot free a block that a live Buffer still shows', () => {
    const h = open();
    const b = h.alloc(64);
    const forge = (target: Uint8Array): Uint8Array => {
      for (const key of Object.getOwnPropertySymbols(b)) (target as unknown as Record<symbol, unknown>)[key] = (b as unknown as Record<symbol, unknown>)[key];
      return target;
    };
    expect(codeOf(() => h.free(forge(Buffer.from(b)) as Buffer))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER');
    expect(codeOf(() => h.free(forge(b.subarray(1)) as Buffer))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER');
    expect(b.length).toBe(64);
    h.check();
    // a full-length view shares the block's ArrayBuffer: freeing through it detaches both
    h.free(forge(b.subarray(0)) as Buffer);
    expect(b.length).toBe(0);
    expect(h.stats().blocksInUse).toBe(0);
    h.check();
  });

  it('reallocates with the contents kept and the old Buffer detached', () => {
    const h = open();
    let b = h.alloc(10);
    b.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const old = b;
    b = h.realloc(b, 100_000);
    expect(old.length).toBe(0);
    expect(b.length).toBe(100_000);
    expect([...b.subarray(0, 10)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(codeOf(() => h.free(old))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    b = h.realloc(b, 4);
    expect([...b]).toEqual([1, 2, 3, 4]);
    expect(h.usableSize(b)).toBeGreaterThanOrEqual(4);
    expect(h.stats()).toMatchObject({ blocksInUse: 1, bytesInUse: 4, allocs: 1, reallocs: 2, frees: 0 });
    h.free(b);
    h.check();
  });

  it('destroy detaches live Buffers, unmaps everything and refuses every later call', () => {
    const h = open();
    const live = h.alloc(1000);
    live.fill(1);
    h.destroy();
    expect(h.destroyed).toBe(true);
    expect(live.length).toBe(0);
    expect(h.stats().bytesMapped).toBe(0);
    for (const call of [() => h.alloc(1), () => h.free(live), () => h.realloc(live, 2), () => h.usableSize(live), () => h.check(), () => h.destroy()]) {
      expect(codeOf(call)).toBe('ERR_HEAPLAB_DESTROYED');
    }
  });

  it('is disposable', () => {
    let b: Buffer;
    {
      using h = createHeap(kind);
      b = h.alloc(10);
    }
    expect(b.length).toBe(0);
  });

  it('frees blocks whose Buffers are collected without free', async () => {
    const h = open();
    (() => {
      for (let i = 0; i < 200; i++) h.alloc(512).fill(1);
    })();
    const kept = h.alloc(512);
    for (let i = 0; i < 20 && h.stats().finalized < 200; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    expect(h.stats().finalized).toBe(200);
    expect(h.stats()).toMatchObject({ blocksInUse: 1, bytesInUse: 512 });
    h.free(kept);
    h.check();
  });

  it('a finalizer after an explicit free or a destroy frees nothing twice', async () => {
    const h = open();
    (() => {
      for (let i = 0; i < 100; i++) h.free(h.alloc(256));
      for (let i = 0; i < 100; i++) h.alloc(256); // reuses the freed addresses
    })();
    for (let i = 0; i < 20 && h.stats().finalized < 100; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    expect(h.stats()).toMatchObject({ frees: 200, finalized: 100, blocksInUse: 0 });
    h.check();
    const d = createHeap(kind);
    (() => {
      for (let i = 0; i < 50; i++) d.alloc(128);
    })();
    d.destroy();
    gc();
    await new Promise((r) => setImmediate(r));
    expect(d.stats().finalized).toBe(0);
  });
});

// What both engines promise alike (the README's table): the same suite over the
// native heap and the TypeScript port behind the same interface.
const engines = ['native', 'ts'] as const;
describe.each(allocatorKinds.flatMap((kind) => engines.map((engine) => [kind, engine] as const)))('%s heap, %s engine', (kind, engine) => {
  const heaps: Heap<Uint8Array>[] = [];
  const open = (options?: { limit?: number }): Heap<Uint8Array> => {
    const h = engine === 'ts' ? createHeap(kind, { ...options, engine }) : createHeap(kind, options);
    heaps.push(h);
    return h;
  };
  afterEach(() => {
    for (const h of heaps.splice(0)) if (!h.destroyed) h.destroy();
  });

  it('answers a second free with ERR_HEAPLAB_DOUBLE_FREE and stays sound', () => {
    const h = open();
    const b = h.alloc(64);
    h.free(b);
    expect(codeOf(() => h.free(b))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(codeOf(() => h.usableSize(b))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    expect(codeOf(() => h.realloc(b, 10))).toBe('ERR_HEAPLAB_DOUBLE_FREE');
    h.check();
    expect(h.stats().frees).toBe(1);
  });

  it('refuses what it did not hand out: subarray, copy, another heap, non-buffers', () => {
    const h = open();
    const other = open();
    const b = h.alloc(256);
    const theirs = other.alloc(256);
    const foreign: unknown[] = [b.subarray(0, 10), b.subarray(16), Buffer.from(b), theirs, new Uint8Array(8), Buffer.alloc(4), {}, null, undefined, 'x', 42];
    for (const f of foreign) expect(codeOf(() => h.free(f as Buffer))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER');
    expect(codeOf(() => h.realloc(theirs, 8))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER');
    expect(codeOf(() => h.usableSize(b.subarray(1)))).toBe('ERR_HEAPLAB_FOREIGN_BUFFER');
    expect(b.length).toBe(256);
    expect(theirs.length).toBe(256);
    h.check();
    other.check();
    expect(h.stats().blocksInUse).toBe(1);
  });

  it('rejects bad sizes, alignments and options with typed errors', () => {
    const h = open();
    const sizes: unknown[] = [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, '8', 8n, null, undefined, {}];
    for (const s of sizes) expect(codeOf(() => h.alloc(s as number))).toBe('ERR_HEAPLAB_INVALID_SIZE');
    const aligns: unknown[] = [0, 3, 24, -16, 1.5, 2 ** 40, '16', NaN];
    for (const a of aligns) expect(codeOf(() => h.alloc(8, { align: a as number }))).toBe('ERR_HEAPLAB_INVALID_ALIGNMENT');
    expect(codeOf(() => h.alloc(8, { zero: 1 as unknown as boolean }))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    expect(codeOf(() => h.alloc(8, { colour: 'red' } as never))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    const b = h.alloc(8);
    expect(codeOf(() => h.realloc(b, -5))).toBe('ERR_HEAPLAB_INVALID_SIZE');
    expect(b.length).toBe(8);
    expect(codeOf(() => createHeap('nope' as never))).toBe('ERR_HEAPLAB_UNKNOWN_ALLOCATOR');
    expect(codeOf(() => createHeap(kind, { limit: -1 }))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    expect(codeOf(() => createHeap(kind, { pageSize: 1000 }))).toBe('ERR_HEAPLAB_INVALID_ARGUMENT');
    expect(h.stats().failedAllocs).toBe(0);
    h.check();
  });

  it('answers sizes the allocator cannot serve with a coded error, not a small block', () => {
    const h = open();
    // native: more than a Buffer can hold (test/sizes.test.ts sweeps the edges); ts: more than the space
    const expected = engine === 'native' ? 'ERR_HEAPLAB_INVALID_SIZE' : 'ERR_HEAPLAB_OUT_OF_MEMORY';
    for (const s of [2 ** 53 - 1, 2 ** 50, 2 ** 47]) expect(codeOf(() => h.alloc(s))).toBe(expected);
    h.check();
    expect(h.stats().blocksInUse).toBe(0);
  });

  it('aligns every block as asked, and zeroes on request', () => {
    const h = open();
    const kept: Uint8Array[] = [];
    for (let align = 1; align <= 1 << 20; align *= 2) {
      for (const size of [0, 1, align + 3]) {
        const b = h.alloc(size, { align });
        expect(h.usableSize(b)).toBeGreaterThanOrEqual(size);
        b.fill(0xff);
        kept.push(b);
      }
    }
    // check() verifies every live block still has the alignment it was asked for
    h.check();
    for (const b of kept) h.free(b);
    const dirty = h.alloc(4096);
    dirty.fill(0xaa);
    h.free(dirty);
    const z = h.alloc(4096, { zero: true });
    expect(z.every((x) => x === 0)).toBe(true);
    const za = h.alloc(5000, { zero: true, align: 8192 });
    expect(za.every((x) => x === 0)).toBe(true);
    h.check();
  });

  it('reaches out-of-memory under a limit, keeps old blocks intact, and recovers', () => {
    const h = open({ limit: 4 << 20 });
    const blocks: Uint8Array[] = [];
    let code: string | undefined;
    for (let i = 0; i < 1000 && !code; i++) {
      code = codeOf(() => {
        const b = h.alloc(64 * 1024);
        b.fill(i & 0xff);
        blocks.push(b);
      });
    }
    expect(code).toBe('ERR_HEAPLAB_OUT_OF_MEMORY');
    expect(blocks.length).toBeGreaterThan(10);
    expect(h.stats().bytesMapped).toBeLessThanOrEqual(4 << 20);
    expect(h.stats().failedAllocs).toBe(1);
    const last = blocks[blocks.length - 1]!;
    expect(codeOf(() => h.realloc(last, 8 << 20))).toBe('ERR_HEAPLAB_OUT_OF_MEMORY');
    expect(last.length).toBe(64 * 1024);
    blocks.forEach((b, i) => expect(b.every((x) => x === (i & 0xff))).toBe(true));
    h.check();
    for (const b of blocks.splice(0, 8)) h.free(b);
    blocks.push(h.alloc(64 * 1024));
    for (const b of blocks) h.free(b);
    h.check();
    const afterAll = h.stats();
    expect(afterAll.bytesMapped).toBeLessThan(afterAll.peakBytesMapped / 2);
  });

  it('gives pages back once everything is freed', () => {
    const h = open();
    const blocks = Array.from({ length: 2000 }, (_, i) => h.alloc(1000 + (i % 7) * 3000));
    const peak = h.stats().bytesMapped;
    for (const b of blocks) h.free(b);
    h.check();
    expect(h.stats().bytesMapped).toBeLessThan(peak / 2);
  });
});

describe('the package entry point', () => {
  it('runs the README one-liner: prints "0 0", and a second free throws ERR_HEAPLAB_DOUBLE_FREE', () => {
    const script =
      "import {createHeap} from 'heaplab'; const h=createHeap('tlsf'); const b=h.alloc(100); b.fill(7); h.free(b); console.log(b.length, h.stats().bytesInUse); try { h.free(b) } catch (e) { console.log(e.code) }";
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(out).toBe('0 0\nERR_HEAPLAB_DOUBLE_FREE\n');
  });
});
