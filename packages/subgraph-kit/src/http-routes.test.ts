import { AppError } from '@aifactory/errors';
import type { AccessModelReader } from '@aifactory/access-model';
import type { Access } from '@aifactory/authz';
import type { RequestContext } from '@aifactory/http';
import type { VerifiedInternalCall } from '@aifactory/service-auth';
import { subgraphHttpRoutes, type SubgraphHttpContext, type SubgraphHttpRoute } from './http-routes.js';

const call: VerifiedInternalCall = {
  principal: { type: 'user', subject: 'u1', platformRoles: [], grants: [] },
  issuer: 'gateway',
  correlationId: 'c-00000001',
  actor: undefined,
};
/** Routes only hand the reader on; these tests never read it. */
const accessModel = {} as AccessModelReader;
const accessFor = () => ({}) as Access;
const ctx = () => ({ correlationId: 'c-00000001' }) as RequestContext;
const refuse = async (): Promise<VerifiedInternalCall> => {
  throw new AppError('INTERNAL_AUTH_UNAUTHENTICATED', 'A valid internal service token is required');
};

function route(overrides: Partial<SubgraphHttpRoute>, seen: SubgraphHttpContext[] = []): SubgraphHttpRoute {
  return { method: 'GET', path: '/api/x', access: 'internal', handle: async (c) => void seen.push(c), ...overrides };
}

describe('subgraphHttpRoutes', () => {
  it('refuses at start a webhook route outside /webhooks/, which would answer without identity', () => {
    expect(() => subgraphHttpRoutes([route({ access: 'webhook', path: '/api/export' })], refuse, accessModel, accessFor)).toThrow(/under \/webhooks\//);
  });

  it('refuses at start an internal route outside /api/', () => {
    expect(() => subgraphHttpRoutes([route({ path: '/graphql', method: 'POST' })], refuse, accessModel, accessFor)).toThrow(/under \/api\//);
  });

  it('refuses at start two routes for the same method and path', () => {
    expect(() => subgraphHttpRoutes([route({}), route({})], refuse, accessModel, accessFor)).toThrow(/Two routes/);
  });

  it('never runs an internal route without a verified call', async () => {
    const seen: SubgraphHttpContext[] = [];
    const routes = subgraphHttpRoutes([route({}, seen)], refuse, accessModel, accessFor);

    await expect(routes['GET /api/x']!(ctx())).rejects.toMatchObject({ code: 'INTERNAL_AUTH_UNAUTHENTICATED' });
    expect(seen).toHaveLength(0);
  });

  it('hands an internal route the verified call on the request context itself', async () => {
    const seen: SubgraphHttpContext[] = [];
    const routes = subgraphHttpRoutes([route({}, seen)], async () => call, accessModel, accessFor);
    const request = ctx();

    await routes['GET /api/x']!(request);
    expect(seen[0]).toBe(request);
    expect(seen[0]!.call).toBe(call);
  });

  it('runs a webhook route with no identity at all', async () => {
    const seen: SubgraphHttpContext[] = [];
    const routes = subgraphHttpRoutes([route({ access: 'webhook', method: 'POST', path: '/webhooks/stripe' }, seen)], refuse, accessModel, accessFor);

    await routes['POST /webhooks/stripe']!(ctx());
    expect(seen).toHaveLength(1);
    expect(seen[0]!.call).toBeUndefined();
  });
});
