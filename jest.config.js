/** Jest runs the TypeScript sources directly (ts-jest, transpile only: `npm run build` type-checks). */
module.exports = {
  testEnvironment: '<rootDir>/test/ort-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 120000,
  maxWorkers: 2,
};
