// ESLint for eloquent-recovery: typescript-eslint's recommended rules, Prettier owning the layout,
// and the Temporal workflow rule: workflow code runs in a deterministic sandbox, so it may import no
// Node built-in and read no process state (settings arrive in the workflow's input).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.flatMap((name) => [name, `node:${name}`]);

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.data/', '.tools/', 'coverage/', 'tools/', '**/*.js', '**/*.cjs'] },
  {
    files: ['**/*.ts', '**/*.mjs'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended, prettier],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'object-shorthand': ['error', 'always'],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'workflow code runs in a deterministic sandbox: no Node built-ins; do I/O in an activity',
          })),
          patterns: [
            {
              group: ['**/activities/**', '!**/activities', '!**/activities/index'],
              allowTypeImports: true,
              message: 'workflows import activity types only (proxyActivities)',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'workflows read no process state: settings arrive in the input' },
      ],
    },
  },
);
