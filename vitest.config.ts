import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['harness/**/*.test.ts', 'scripts/**/*.test.ts'],
    globalSetup: ['harness/test-support/global-setup.ts'],
    // Tests that compile with clang or walk a whole kernel BTF take seconds, not milliseconds.
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
