/**
 * page-cache.ts — the `pageCache` option of createHeap: the mmap page source's
 * cache of freed page runs (native/pages/pages.h, hl_page_cache_config), checked here
 * so the addon can trust it. The defaults come from the C (binding.pageCacheDefaults).
 */
import type { NativePageCacheOptions } from '../../binding.js';
import { binding } from '../addon/native.js';
import { checkByteCount, checkIntegerIn, checkOptions } from '../validate.js';

/** Tuning of the page cache; every field is optional (the defaults are the C's). */
export interface PageCacheOptions {
  /** Bytes the cache may keep however small the heap (default 256 KiB). */
  floor?: number;
  /** Plus this share, 0–100, of the bytes the heap holds (default 2). */
  percent?: number;
  /** A run left unused this many milliseconds goes back to the system, above the floor (default 1000; 0: never). */
  decayMs?: number;
  /** Runs longer than this many bytes are never kept (default 1 MiB). */
  runMax?: number;
  /** Of a run a design will carve into many blocks (its prefault_page hint), this many bytes are faulted in by one call, not one trap per page inside later mallocs (default 1 MiB; 0: none). */
  prefault?: number;
}

/** `true`/undefined: the defaults; `false`: no cache; an object: the defaults with its fields over them. */
export function checkPageCacheOptions(value: unknown): NativePageCacheOptions {
  const d = binding.pageCacheDefaults;
  if (value === undefined || value === true) return { ...d };
  if (value === false) return { ...d, enabled: false };
  const o = checkOptions(value, 'pageCache options', ['floor', 'percent', 'decayMs', 'runMax', 'prefault']);
  return {
    enabled: true,
    floor: o.floor === undefined ? d.floor : checkByteCount(o.floor, 'pageCache.floor'),
    percent: checkIntegerIn(o.percent, 'pageCache.percent', 0, 100, d.percent),
    decayMs: checkIntegerIn(o.decayMs, 'pageCache.decayMs', 0, 86_400_000, d.decayMs),
    runMax: o.runMax === undefined ? d.runMax : checkByteCount(o.runMax, 'pageCache.runMax'),
    prefault: o.prefault === undefined ? d.prefault : checkByteCount(o.prefault, 'pageCache.prefault'),
  };
}
