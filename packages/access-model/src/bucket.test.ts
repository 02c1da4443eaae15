import { accessBucketName, policyKey, principalKey } from './bucket.js';

describe('read model keys', () => {
  it('names the bucket IAM_ACCESS, or after the test prefix like stream names', () => {
    expect(accessBucketName()).toBe('IAM_ACCESS');
    expect(accessBucketName('t0a1b2c3d4')).toBe('T0A1B2C3D4_IAM_ACCESS');
  });

  it('keys a principal by a hash of issuer and subject, usable as one KV token', () => {
    const key = principalKey('https://id.example/realms/a', 'user-1');
    expect(key).toMatch(/^principal\.[A-Za-z0-9_-]{43}$/);
    expect(principalKey('https://id.example/realms/a', 'user-1')).toBe(key);
    expect(principalKey('https://id.example/realms/a', 'user-2')).not.toBe(key);
    expect(principalKey('https://id.example/realms/b', 'user-1')).not.toBe(key);
  });

  it('keys policy snapshots globally or per organization', () => {
    expect(policyKey(null)).toBe('policy.global');
    expect(policyKey('2f1c0d9e-52b4-4c8e-9a63-1f0a2b3c4d5e')).toBe('policy.org.2f1c0d9e-52b4-4c8e-9a63-1f0a2b3c4d5e');
  });

  it('refuses an organization id that would make the key a wildcard or add levels', () => {
    expect(() => policyKey('a.b')).toThrow(expect.objectContaining({ code: 'INTERNAL_ERROR' }));
    expect(() => policyKey('>')).toThrow(expect.objectContaining({ code: 'INTERNAL_ERROR' }));
  });
});
