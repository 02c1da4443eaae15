import type { AccessModelReader } from '@aifactory/access-model';
import type { Access } from '@aifactory/authz';
import type { RequestContext, Routes } from '@aifactory/http';
import { actorIdsOf, type Principal, type VerifiedInternalCall } from '@aifactory/service-auth';
import type { ServiceClient } from './service-client.js';

/**
 * A REST route of a subgraph beside `/graphql` (ARCHITECTURE.md, Decisions:
 * Routes besides GraphQL): an export the gateway forwards from
 * `/api/<subgraph>/...` with an internal JWT, or a provider's webhook it
 * forwards from `/webhooks/<provider>` with the raw body.
 */
export interface SubgraphHttpRoute {
  method: 'GET' | 'POST';
  /** `/api/...` for `internal` routes, `/webhooks/<provider>` for `webhook` routes. */
  path: string;
  /**
   * `internal`: only with an internal JWT minted for this subgraph; the
   * handler gets the verified call. `webhook`: no identity at all, so the
   * handler itself must verify the provider's signature over the raw body.
   */
  access: 'internal' | 'webhook';
  handle(ctx: SubgraphHttpContext): Promise<void>;
}

/**
 * `call` and `access` (the caller's authorization as GraphQL resolvers get
 * it, its denies audited; built when first asked, since routes that decide by
 * service identity alone must not need IAM's catalogue) are always set for
 * `internal` routes and never for `webhook` ones; `serviceClient` wherever the service has a credential
 * of its own; `accessModel` is IAM's read model (catalogue, policy snapshots
 * and their age).
 */
export type SubgraphHttpContext = RequestContext & {
  call?: VerifiedInternalCall;
  access?: () => Access;
  serviceClient?: ServiceClient;
  accessModel: AccessModelReader;
};

const PATH_PREFIX: Record<SubgraphHttpRoute['access'], string> = { internal: '/api/', webhook: '/webhooks/' };

/**
 * The routes keyed for `startHttpServer`. Each access kind is confined to its
 * own prefix, so a route cannot be mounted without identity by mistake
 * (a `webhook` route at `/api/...`) nor shadow `/graphql` or the probes.
 * Throws at start on any route that breaks that.
 */
export function subgraphHttpRoutes(
  routes: readonly SubgraphHttpRoute[],
  verifyCall: (ctx: RequestContext) => Promise<VerifiedInternalCall>,
  accessModel: AccessModelReader,
  accessFor: (principal: Principal, correlationId: string) => Access,
  serviceClient?: ServiceClient,
): Routes {
  const mounted: Routes = {};
  for (const route of routes) {
    const prefix = PATH_PREFIX[route.access];
    if (!route.path.startsWith(prefix) || route.path.length === prefix.length) {
      throw new Error(`A ${route.access} route must be under ${prefix}: ${route.method} ${route.path}`);
    }
    const key = `${route.method} ${route.path}`;
    if (mounted[key]) throw new Error(`Two routes for ${key}`);
    mounted[key] =
      route.access === 'webhook'
        ? (ctx) => route.handle(Object.assign(ctx, serviceClient ? { serviceClient, accessModel } : { accessModel }))
        : async (ctx) => {
            // An INTERNAL_AUTH_UNAUTHENTICATED thrown here is answered by the server as the REST envelope (401).
            const call = await verifyCall(ctx);
            ctx.actor = actorIdsOf(call.principal);
            // The same object the server logs from, so a `failure` the handler records reaches the request's log line.
            let built: Access | undefined;
            const access = () => (built ??= accessFor(call.principal, ctx.correlationId));
            await route.handle(Object.assign(ctx, serviceClient ? { call, access, serviceClient, accessModel } : { call, access, accessModel }));
          };
  }
  return mounted;
}
