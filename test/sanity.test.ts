// `heaplab sanity --quick`: real programs on glibc and on each preload library,
// outputs compared byte for byte. The full version is `npx heaplab sanity`.
import { describe, expect, it } from 'vitest';
import { formatSanityTable, runSanity, sanityPrograms } from '../lib/sanity/sanity.js';
import {  } from '../lib/preload/preload.js';
import { allocatorNames } from '../lib/kinds.js';

describe('heaplab sanity --quick', () => {
  it('every program gives glibc\'s output on every allocator', async () => {
    const report = await runSanity({ quick: true });
    const table = formatSanityTable(report);
    console.log(table);
    expect(report.targets).toEqual(['glibc', ...allocatorNames]);
    expect(report.programs).toEqual(sanityPrograms);
    for (const r of report.results) {
      expect(r.status, `${r.program} on ${r.target}: ${r.reason ?? ''}\n${table}`).toBe('pass');
    }
    expect(report.ok).toBe(true);
  }, 240_000);
});
