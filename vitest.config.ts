import { configDefaults, defineConfig } from 'vitest/config';

// Tests never assert on time; the generous timeout only keeps slow shared CI machines from
// failing a correct test. vitest's default exclude hides every folder named `dist`, which would
// drop test/dist/ (the distributed tests): keep only the build output excluded.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'], // one summary line of the tests skipped for a missing system piece
    exclude: [...configDefaults.exclude.filter((p) => p !== '**/dist/**'), 'dist/**'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
