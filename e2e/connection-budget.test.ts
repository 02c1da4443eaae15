import { readFileSync } from 'node:fs';

/**
 * README, "Connection budget": the dev stack (6 subgraphs x DB_POOL_SIZE 5)
 * plus a test run at its peak stay under this many client connections, well
 * below Postgres's max_connections of 100. The sampler in
 * test-support/global-setup.mjs counts every client backend on the server,
 * a running dev stack included; this file runs last.
 */
const CONNECTION_BUDGET = 70;

describe('connection budget', () => {
  it('stays below the documented budget at the peak of the test run', () => {
    const file = process.env.AIF_CONNECTION_PEAK_FILE;
    if (!file) throw new Error('the connection sampler (test-support/global-setup.mjs) did not run');
    const { peak, samples } = JSON.parse(readFileSync(file, 'utf8')) as { peak: number; samples: number };
    expect(samples).toBeGreaterThan(0);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(CONNECTION_BUDGET);
  });
});
