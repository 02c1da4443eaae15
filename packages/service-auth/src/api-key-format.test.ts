import {
  API_KEY_ENVIRONMENTS,
  API_KEY_PATTERN,
  API_KEY_SECRET_BYTES,
  API_KEY_SECRET_LENGTH,
  apiKeyFingerprint,
  apiKeyPrefix,
  issueApiKey,
  newApiKeyId,
  parseApiKey,
} from './api-key-format.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base62Value(text: string): bigint {
  let value = 0n;
  for (const char of text) value = value * 62n + BigInt(BASE62.indexOf(char));
  return value;
}

describe('API key format', () => {
  it('round-trips every environment: parse gives back what issue made', () => {
    for (const environment of API_KEY_ENVIRONMENTS) {
      const key = issueApiKey(environment);
      expect(key.raw).toMatch(API_KEY_PATTERN);
      expect(key.raw.startsWith(`aif_${environment}_${key.keyId}_${key.secret}`)).toBe(true);
      expect(key.prefix).toBe(apiKeyPrefix(environment, key.keyId));
      expect(parseApiKey(key.raw)).toEqual({ environment, keyId: key.keyId, secret: key.secret });
    }
  });

  it('keeps a given key id (rotation names the new id up front)', () => {
    const keyId = newApiKeyId();
    expect(keyId).toMatch(/^[a-z2-7]{20}$/);
    expect(issueApiKey('test', keyId).keyId).toBe(keyId);
  });

  it('carries a secret of at least 32 random bytes', () => {
    expect(API_KEY_SECRET_BYTES).toBeGreaterThanOrEqual(32);
    // 43 base62 digits hold 256 bits; more than 2^256 would mean the encoding is not of 32 bytes.
    expect(62n ** BigInt(API_KEY_SECRET_LENGTH)).toBeGreaterThanOrEqual(2n ** 256n);
    const secrets = new Set<string>();
    let highBits = 0;
    for (let i = 0; i < 200; i++) {
      const { secret } = issueApiKey('dev');
      expect(secret).toHaveLength(API_KEY_SECRET_LENGTH);
      const value = base62Value(secret);
      expect(value < 2n ** 256n).toBe(true);
      if (value >= 2n ** 255n) highBits += 1;
      secrets.add(secret);
    }
    expect(secrets.size).toBe(200);
    // The top bit of 32 random bytes is set about half the time; a shorter secret would never set it.
    expect(highBits).toBeGreaterThan(50);
    expect(highBits).toBeLessThan(150);
  });

  it('rejects a key with any single character changed', () => {
    const { raw } = issueApiKey('live');
    for (let i = 0; i < raw.length; i++) {
      const original = raw[i]!;
      // Stay within the alphabet of that position, so the checksum (not the pattern) must catch it.
      const alphabet = i >= 'aif_live_'.length && i < 'aif_live_'.length + 20 ? BASE32 : BASE62;
      const substitute = [...alphabet].find((char) => char !== original && char.toLowerCase() !== original) ?? '_';
      const changed = raw.slice(0, i) + substitute + raw.slice(i + 1);
      expect(parseApiKey(changed)).toBeNull();
    }
  });

  it('rejects every other shape', () => {
    const { raw } = issueApiKey('test');
    for (const bad of ['', raw.slice(1), `${raw}x`, raw.replace('aif_test_', 'aif_prod_'), raw.replace('aif_', 'sk_'), raw.toUpperCase(), ` ${raw}`]) {
      expect(parseApiKey(bad)).toBeNull();
    }
  });

  it('fingerprints the whole key without revealing its secret', () => {
    const key = issueApiKey('live');
    expect(key.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(key.fingerprint).toBe(apiKeyFingerprint(key.raw));
    expect(key.fingerprint).not.toBe(apiKeyFingerprint(issueApiKey('live', key.keyId).raw));
    expect(key.raw.includes(key.fingerprint)).toBe(false);
    expect(key.prefix.includes(key.secret.slice(0, 8))).toBe(false);
  });
});
