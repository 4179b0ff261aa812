import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.firehose-dev/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Plain Node scripts: transform modules, the worker, test helpers that run in their own process.
    files: ['**/*.mjs', 'src/**/*.js', 'transforms/**/*.js'],
    languageOptions: { globals: { process: 'readonly', Buffer: 'readonly', URL: 'readonly', console: 'readonly', performance: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', AbortController: 'readonly' } },
  },
  {
    // Transform fixtures written as Lambda functions are: CommonJS (their folder says so), kept as
    // AWS's blueprints have them.
    files: ['test/fixtures/transforms/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { exports: 'writable', module: 'writable', require: 'readonly', setTimeout: 'readonly', Buffer: 'readonly', console: 'readonly' },
    },
    rules: { '@typescript-eslint/no-unused-vars': 'off' },
  },
);
