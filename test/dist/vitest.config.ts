/**
 * Runs only the distributed tests: `npx vitest run --config test/dist/vitest.config.ts`.
 * (vitest's default exclude list holds the pattern "any folder named dist", which also hides
 * `test/dist/`; the root config must drop that pattern for `npm test` to include these tests.)
 */
import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/dist/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    exclude: [...configDefaults.exclude.filter((p) => p !== '**/dist/**'), 'dist/**'],
  },
});
