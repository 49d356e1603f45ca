/** Integration tests against the real local stack (scripts/stack.sh up runs first, from scripts/test.sh). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false, tsconfig: 'tsconfig.json' }],
    // @kubernetes/client-node 1.x and its dependencies are ES modules, which jest on Node 20 cannot
    // require: compile just those to CommonJS (cached after the first run).
    '^.+\\.js$': [
      'ts-jest',
      {
        diagnostics: false,
        tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022', isolatedModules: true, esModuleInterop: true },
      },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose)/)'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  testTimeout: 120000,
  // Two cores: two files at a time keep the servers busy without starving them.
  maxWorkers: 2,
  verbose: true,
};
