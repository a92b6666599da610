import { defineConfig } from 'vitest/config';

// `pnpm test:soak`: the load and soak test against a real Consul agent, kept out of `pnpm test`.
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // One worker process: the test measures its own heap and open handles, and needs global.gc().
    pool: 'forks',
    maxWorkers: 1,
    execArgv: ['--expose-gc'],
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
  },
});
