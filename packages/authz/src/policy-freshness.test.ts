import { requireFreshPolicy } from './policy-freshness.js';

function refusalCounter() {
  const counter = { count: 0, onRefusal: () => (counter.count += 1) };
  return counter;
}

describe('requireFreshPolicy', () => {
  it('lets a decision through on a snapshot up to five minutes old', () => {
    const refusals = refusalCounter();

    requireFreshPolicy({ ageMs: 5 * 60_000, onRefusal: refusals.onRefusal });

    expect(refusals.count).toBe(0);
  });

  it('refuses with POLICY_SNAPSHOT_STALE past five minutes, and counts it', () => {
    const refusals = refusalCounter();

    expect(() => requireFreshPolicy({ ageMs: 5 * 60_000 + 1, onRefusal: refusals.onRefusal })).toThrow(
      expect.objectContaining({ code: 'POLICY_SNAPSHOT_STALE', details: { ageMs: 300_001, maxAgeMs: 300_000 } }),
    );
    expect(refusals.count).toBe(1);
  });

  it('refuses when there is no snapshot at all', () => {
    const refusals = refusalCounter();

    expect(() => requireFreshPolicy({ ageMs: null, onRefusal: refusals.onRefusal })).toThrow(expect.objectContaining({ code: 'POLICY_SNAPSHOT_STALE' }));
    expect(refusals.count).toBe(1);
  });

  it('honours a tighter budget', () => {
    expect(() => requireFreshPolicy({ ageMs: 2_001, maxAgeMs: 2_000 })).toThrow(expect.objectContaining({ code: 'POLICY_SNAPSHOT_STALE' }));
  });
});
