import type { PolicySnapshot } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import { grantExpiry, promotionalCreditTtlSeconds, PROMOTIONAL_CREDIT_TTL_KEY } from './promotional-credit.js';
import { drawEarliestFirst, expiringAmount } from './promotional-draw.js';

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

describe('drawing promotional credit from grants', () => {
  const grants = [
    { id: 'expires-first', remaining: 300n },
    { id: 'expires-next', remaining: 500n },
    { id: 'expires-last', remaining: 1_000n },
  ];

  it('takes the earliest expiry first, each grant at most what it has left', () => {
    expect(drawEarliestFirst(grants, 700n)).toEqual([
      { id: 'expires-first', take: 300n },
      { id: 'expires-next', take: 400n },
    ]);
  });

  it('takes only what is asked, and never more than the grants hold', () => {
    expect(drawEarliestFirst(grants, 100n)).toEqual([{ id: 'expires-first', take: 100n }]);
    expect(drawEarliestFirst(grants, 5_000n).reduce((sum, t) => sum + t.take, 0n)).toBe(1_800n);
    expect(drawEarliestFirst([{ id: 'spent', remaining: 0n }, ...grants], 100n)).toEqual([{ id: 'expires-first', take: 100n }]);
  });
});

describe('what an expiring grant takes back', () => {
  it('is what charges left of it', () => {
    expect(expiringAmount(700n, 1_500n)).toBe(700n);
    expect(expiringAmount(0n, 1_500n)).toBe(0n);
  });

  it('is never more than the promotional balance', () => {
    expect(expiringAmount(700n, 200n)).toBe(200n);
    expect(expiringAmount(700n, 0n)).toBe(0n);
    expect(expiringAmount(700n, -5n)).toBe(0n);
  });
});
