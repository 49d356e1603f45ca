/** Integration tests against the real local stack (scripts/stack.sh up runs first, from scripts/test.sh). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false, tsconfig: 'tsconfig.json' }] },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  testTimeout: 120000,
  // Two cores: two files at a time keep the servers busy without starving them.
  maxWorkers: 2,
  verbose: true,
};
