import type { PolicySnapshot } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import { grantExpiry, promotionalCreditTtlSeconds, PROMOTIONAL_CREDIT_TTL_KEY, unspentOfGrant } from './promotional-credit.js';

const DAY = 86_400;

function snapshot(organizationValue?: string): PolicySnapshot {
  return {
    version: 1,
    organizationId: 'org-1',
    planId: null,
    keys: {
      [PROMOTIONAL_CREDIT_TTL_KEY]: {
        key: PROMOTIONAL_CREDIT_TTL_KEY,
        type: 'duration',
        unit: null,
        default: 'P365D',
        direction: 'ceiling',
        application: 'per_project',
        enumValues: null,
        description: 'How long granted promotional credit stays spendable.',
        lifecycle: 'active',
      },
    },
    layers: {
      global: {},
      plan: {},
      organization: organizationValue === undefined ? {} : { [PROMOTIONAL_CREDIT_TTL_KEY]: organizationValue },
      departments: {},
      projects: {},
    },
    publishedAt: '2026-01-01T00:00:00.000Z',
  };
}

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    return error instanceof AppError ? error.code : 'not an AppError';
  }
  return undefined;
}

describe('promotional credit TTL from policy', () => {
  it('is the key default (P365D) when nothing is set', () => {
    expect(promotionalCreditTtlSeconds(snapshot())).toBe(365 * DAY);
  });

  it("is the organization's value when it sets one", () => {
    expect(promotionalCreditTtlSeconds(snapshot('P2W'))).toBe(14 * DAY);
  });

  it('refuses a zero duration', () => {
    expect(codeOf(() => promotionalCreditTtlSeconds(snapshot('PT0S')))).toBe('POLICY_VALUE_INVALID');
  });
});

describe('grant expiry', () => {
  const now = new Date('2026-03-01T00:00:00.000Z');

  it('defaults to the TTL from now', () => {
    expect(grantExpiry(now, 30 * DAY).toISOString()).toBe('2026-03-31T00:00:00.000Z');
    expect(grantExpiry(now, 30 * DAY, null).toISOString()).toBe('2026-03-31T00:00:00.000Z');
  });

  it('takes a requested expiry inside the TTL, the TTL itself included', () => {
    expect(grantExpiry(now, 30 * DAY, new Date('2026-03-10T00:00:00.000Z')).toISOString()).toBe('2026-03-10T00:00:00.000Z');
    expect(grantExpiry(now, 30 * DAY, new Date('2026-03-31T00:00:00.000Z')).toISOString()).toBe('2026-03-31T00:00:00.000Z');
  });

  it('refuses an expiry beyond the TTL, now, in the past or invalid', () => {
    for (const requested of ['2026-03-31T00:00:00.001Z', '2026-03-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z', 'not a date']) {
      expect(codeOf(() => grantExpiry(now, 30 * DAY, new Date(requested)))).toBe('BILLING_PROMOTIONAL_EXPIRY_INVALID');
    }
  });
});

describe('what is left of a grant at its expiry', () => {
  it('is all of it while nothing was spent', () => {
    expect(unspentOfGrant(1500n, 500n, 1000n)).toBe(1000n);
  });

  it('is what the balance holds beyond the grants expiring later', () => {
    // 300 spent from the earliest grant: 1200 left, 500 of it the later grant's.
    expect(unspentOfGrant(1200n, 500n, 1000n)).toBe(700n);
  });

  it('is nothing when spending reached the grants expiring later', () => {
    expect(unspentOfGrant(400n, 500n, 1000n)).toBe(0n);
    expect(unspentOfGrant(0n, 0n, 1000n)).toBe(0n);
  });

  it('is never more than the grant, whatever else the balance holds', () => {
    expect(unspentOfGrant(5000n, 0n, 1000n)).toBe(1000n);
  });
});
