import type { PolicySnapshot } from '@aifactory/authz';
import type { Principal } from '@aifactory/service-auth';
import { policyRateLimitPolicy, REQUESTS_PER_MINUTE_KEY } from './rate-limits.js';

const config = {
  default: { limit: 1200, windowSeconds: 60 },
  operations: { CreateOrganization: { limit: 5, windowSeconds: 60 } },
  routes: { billing: { limit: 30, windowSeconds: 60 } },
  webhooks: { limit: 600, windowSeconds: 60 },
};
const principal: Principal = { type: 'user', subject: 'u-1', platformRoles: [], grants: [] };

function globalSnapshot(version: number, global: Record<string, string>, keyDefault = '900'): PolicySnapshot {
  return {
    version,
    organizationId: null,
    planId: null,
    keys: {
      [REQUESTS_PER_MINUTE_KEY]: {
        key: REQUESTS_PER_MINUTE_KEY,
        type: 'integer',
        unit: 'requests',
        default: keyDefault,
        direction: 'ceiling',
        application: 'per_project',
        enumValues: null,
        description: 'Requests one principal may make through the gateway per minute.',
        lifecycle: 'active',
      },
    },
    layers: { global, plan: {}, organization: {}, departments: {}, projects: {} },
    publishedAt: '2026-01-01T00:00:00.000Z',
  };
}

describe('rate limits from policy keys', () => {
  it('uses the configured default until a global policy snapshot exists', () => {
    const policy = policyRateLimitPolicy(config, () => undefined);
    expect(policy.principalRule(principal)).toEqual({ limit: 1200, windowSeconds: 60 });
  });

  it("takes the per-principal limit from the global value of platform.gateway.requests_per_minute, else the key's default", () => {
    let snapshot = globalSnapshot(1, {});
    const policy = policyRateLimitPolicy(config, () => snapshot);
    expect(policy.principalRule(principal)).toEqual({ limit: 900, windowSeconds: 60 });
    snapshot = globalSnapshot(2, { [REQUESTS_PER_MINUTE_KEY]: '75' });
    expect(policy.principalRule(principal)).toEqual({ limit: 75, windowSeconds: 60 });
  });

  it('falls back to the configured default when the snapshot lacks the key', () => {
    const snapshot: PolicySnapshot = { ...globalSnapshot(1, {}), keys: {} };
    expect(policyRateLimitPolicy(config, () => snapshot).principalRule(principal)).toEqual(config.default);
  });

  it('keeps operation, route and webhook rules from config', () => {
    const policy = policyRateLimitPolicy(config, () => globalSnapshot(1, { [REQUESTS_PER_MINUTE_KEY]: '75' }));
    expect(policy.operationRule(principal, 'CreateOrganization')).toEqual({ limit: 5, windowSeconds: 60 });
    expect(policy.routeRule(principal, 'billing')).toEqual({ limit: 30, windowSeconds: 60 });
    expect(policy.webhookRule('stripe')).toEqual(config.webhooks);
  });
});
