import { ApiKeyNegativeCache } from './api-key-negative-cache.js';

describe('the negative cache of refused keys', () => {
  it('answers a refusal until its time is up, then forgets it', () => {
    const cache = new ApiKeyNegativeCache<string>(5_000);
    const fingerprint = ApiKeyNegativeCache.fingerprint('aif_test_bad');
    cache.remember(fingerprint, 'k1', 'unknown', 0);
    expect(cache.get(fingerprint, 4_999)).toBe('unknown');
    expect(cache.get(fingerprint, 5_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("drops every refusal of a key id when its entry changes, and only those", () => {
    const cache = new ApiKeyNegativeCache<string>(5_000);
    cache.remember('a', 'k1', 'unknown', 0);
    cache.remember('b', 'k1', 'unknown', 0);
    cache.remember('c', 'k2', 'unknown', 0);
    cache.remember('d', undefined, 'unknown', 0);
    cache.forgetKey('k1');
    expect([cache.get('a', 1), cache.get('b', 1), cache.get('c', 1), cache.get('d', 1)]).toEqual([undefined, undefined, 'unknown', 'unknown']);
  });

  it('holds at most its bound, forgetting the oldest first, and sheds expired entries as it goes', () => {
    const cache = new ApiKeyNegativeCache<string>(5_000, 2);
    cache.remember('a', 'k1', 'unknown', 0);
    cache.remember('b', 'k2', 'unknown', 1);
    cache.remember('c', 'k3', 'unknown', 2);
    expect([cache.get('a', 3), cache.get('b', 3), cache.get('c', 3)]).toEqual([undefined, 'unknown', 'unknown']);
    cache.remember('d', 'k4', 'unknown', 5_001);
    expect(cache.size).toBe(2);
    cache.remember('e', 'k5', 'unknown', 5_003);
    expect(cache.size).toBe(2);
    expect(cache.get('d', 5_003)).toBe('unknown');
  });

  it('keys by a hash, never by the key text itself', () => {
    const fingerprint = ApiKeyNegativeCache.fingerprint('aif_test_secretpart');
    expect(fingerprint).not.toContain('secretpart');
    expect(fingerprint).toBe(ApiKeyNegativeCache.fingerprint('aif_test_secretpart'));
  });
});
