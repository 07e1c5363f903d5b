// ESLint (flat config): the recommended JavaScript and typescript-eslint rules over the sources,
// tests, benchmarks and scripts, with the few project choices below. `npm run lint`.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // build outputs and generated bundles (as in .gitignore)
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      '**/*.d.ts',
      'examples/browser/build/**',
      'test-artifacts/**',
      'runs/**',
      'checkpoints/**',
      '.gl/**',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    // CommonJS files (preloaded with `node --require`) load modules with require()
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // the browser example runs in a page and a worker
    files: ['examples/browser/**/*.js'],
    languageOptions: {
      globals: { window: 'readonly', document: 'readonly', location: 'readonly', Worker: 'readonly', self: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' },
    },
    rules: {
      // Prettier wraps code at 160 columns but not strings, regexes or comments: keep those under it too
      'max-len': ['error', { code: 160, ignoreUrls: true }],
      // `let { x, mask } = …` where only x is reassigned stays one declaration
      'prefer-const': ['error', { destructuring: 'all' }],
      // `_name` marks an argument or binding that is deliberately unused
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
);
