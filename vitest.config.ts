import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Every suite starts its own redis-server, kinesalite and s3rver; on two cores the end-to-end
    // suites need generous limits rather than retries.
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The SDK's notice that releases after January 2027 need Node 22 (README: Limits) is noise in test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
