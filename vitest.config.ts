import { defineConfig } from 'vitest/config';

// Tests never assert on time; the generous timeout only keeps slow shared CI machines from
// failing a correct test.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
