import { buildCatalogSnapshot } from '@aifactory/authz';
import { loadRegistryData } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import type { Principal } from '@aifactory/service-auth';
import { subscriptionSource } from './sources.js';
import { subscriptionAccess, type SubscriptionDeny } from './subscription-access.js';
import type { SubscriptionRequest } from './subscription-engine.js';

const ORG_A = '11111111-1111-4111-8111-111111111111';
const ORG_B = '22222222-2222-4222-8222-222222222222';
const DEPT_B = 'bbbbbbbb-0000-4000-8000-00000000000b';

const registry = loadRegistryData();
const catalog = buildCatalogSnapshot({ scopes: registry.scopes, roles: registry.roles, registryVersions: { scopes: 1 }, publishedAt: '2026-01-01T00:00:00.000Z' });

function watching(organizationId: string): SubscriptionRequest {
  const source = subscriptionSource('organizationUpdated', undefined);
  if (!source) throw new Error('organizationUpdated has no source');
  return { source, args: { id: organizationId }, correlationId: 'corr-1' } as unknown as SubscriptionRequest;
}

function member(grants: Principal['grants']): Principal {
  return { type: 'user', subject: 'user-1', platformRoles: [], grants };
}

describe('subscription access from grants', () => {
  let fresh: boolean;
  let denies: SubscriptionDeny[];
  const authorize = subscriptionAccess({
    catalog: () => catalog,
    requireFresh: () => {
      if (!fresh) throw new AppError('AUTH_READ_MODEL_STALE', 'stale');
    },
    onDeny: (deny) => denies.push(deny),
  });

  beforeEach(() => {
    fresh = true;
    denies = [];
  });

  it('lets any member of the organization watch it', async () => {
    const projectMember = member([{ level: 'department', id: DEPT_B, role: 'viewer', org: ORG_B, dept: DEPT_B }]);
    expect(await authorize(projectMember, watching(ORG_B), undefined)).toBeUndefined();
  });

  it('refuses a member of another organization, and reports the deny', async () => {
    const other = member([{ level: 'organization', id: ORG_A, role: 'org_admin', org: ORG_A, dept: null }]);
    const refusal = await authorize(other, watching(ORG_B), undefined);
    expect(refusal?.code).toBe('AUTH_FORBIDDEN');
    expect(denies).toEqual([{ principal: other, scope: 'platform:organization:read', resource: { organizationId: ORG_B }, correlationId: 'corr-1', reason: 'resource_not_covered' }]);
  });

  it('lets a platform admin watch every organization', async () => {
    expect(await authorize({ ...member([]), platformRoles: ['platform_admin'] }, watching(ORG_B), undefined)).toBeUndefined();
  });

  it('fails closed with AUTH_READ_MODEL_STALE on a stale read model', async () => {
    fresh = false;
    const owner = member([{ level: 'organization', id: ORG_B, role: 'org_admin', org: ORG_B, dept: null }]);
    expect((await authorize(owner, watching(ORG_B), undefined))?.code).toBe('AUTH_READ_MODEL_STALE');
  });
});
