import { durationSeconds, keyExpiry, rotationGraceUntil, type KeyLifetimePolicy } from './api-key-policy.js';

const now = new Date('2026-03-01T00:00:00.000Z');
const day = 86_400;
const policy: KeyLifetimePolicy = { defaultTtlSeconds: 90 * day, maxTtlSeconds: 365 * day, allowNoExpiry: false, maxRotationGraceSeconds: 7 * day };
const member = { platformAdmin: false };
const admin = { platformAdmin: true };
const plus = (seconds: number) => new Date(now.getTime() + seconds * 1000);

describe('an API key expiry', () => {
  it('defaults to the policy default, never past the maximum', () => {
    expect(keyExpiry({}, policy, member, now)).toEqual(plus(90 * day));
    expect(keyExpiry({}, { ...policy, maxTtlSeconds: 30 * day }, member, now)).toEqual(plus(30 * day));
  });

  it('takes the expiry asked for up to the maximum, and refuses one past it or in the past', () => {
    expect(keyExpiry({ expiresAt: plus(365 * day) }, policy, member, now)).toEqual(plus(365 * day));
    expect(() => keyExpiry({ expiresAt: plus(365 * day + 1) }, policy, member, now)).toThrow(expect.objectContaining({ code: 'IAM_API_KEY_EXPIRY_INVALID' }));
    expect(() => keyExpiry({ expiresAt: now }, policy, member, now)).toThrow(expect.objectContaining({ code: 'IAM_API_KEY_EXPIRY_INVALID' }));
  });

  it('never expires only for a platform admin where policy allows it', () => {
    const refused = expect.objectContaining({ code: 'IAM_API_KEY_EXPIRY_INVALID' });
    expect(() => keyExpiry({ neverExpires: true }, policy, admin, now)).toThrow(refused);
    expect(() => keyExpiry({ neverExpires: true }, { ...policy, allowNoExpiry: true }, member, now)).toThrow(refused);
    expect(keyExpiry({ neverExpires: true }, { ...policy, allowNoExpiry: true }, admin, now)).toBeNull();
    expect(() => keyExpiry({ neverExpires: true, expiresAt: plus(day) }, { ...policy, allowNoExpiry: true }, admin, now)).toThrow(refused);
  });
});

describe('a rotation grace', () => {
  it('is bounded by the policy maximum', () => {
    expect(rotationGraceUntil(0, policy, now)).toEqual(now);
    expect(rotationGraceUntil(7 * day, policy, now)).toEqual(plus(7 * day));
    expect(() => rotationGraceUntil(7 * day + 1, policy, now)).toThrow(expect.objectContaining({ code: 'IAM_API_KEY_GRACE_INVALID' }));
    expect(() => rotationGraceUntil(-1, policy, now)).toThrow(expect.objectContaining({ code: 'IAM_API_KEY_GRACE_INVALID' }));
  });
});

describe('policy durations', () => {
  it('reads weeks, days, hours, minutes and seconds', () => {
    expect(durationSeconds('k', 'P90D')).toBe(90 * day);
    expect(durationSeconds('k', 'P1W')).toBe(7 * day);
    expect(durationSeconds('k', 'PT1H30M5S')).toBe(5405);
    expect(() => durationSeconds('k', 'P1Y')).toThrow(expect.objectContaining({ code: 'INTERNAL_ERROR' }));
  });
});
