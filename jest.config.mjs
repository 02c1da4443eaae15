/**
 * One jest run for the whole repository: unit tests beside the code
 * (`src/**\/*.test.ts`) and integration tests in `test/` against the real
 * Postgres, Redis and NATS. Workspace packages resolve to their built `dist/`,
 * so `npm test` builds first.
 */
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
  },
];

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/**/src/**/*.test.ts', '<rootDir>/**/test/**/*.test.ts', '<rootDir>/e2e/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/.dev/'],
  testTimeout: 60_000,
  maxWorkers: 2,
  globalSetup: '<rootDir>/test-support/global-setup.mjs',
  globalTeardown: '<rootDir>/test-support/global-teardown.mjs',
  testSequencer: '<rootDir>/test-support/sequencer.cjs',
  reporters: ['default', '<rootDir>/test-support/summary-reporter.cjs'],
};
