import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // the C drivers and the sanity run are CPU-heavy; 2 cores
    maxWorkers: 2,
    pool: 'forks',
  },
});
