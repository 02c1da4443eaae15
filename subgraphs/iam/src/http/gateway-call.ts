import { AppError } from '@aifactory/errors';
import type { SubgraphHttpContext } from '@aifactory/subgraph-kit';
import type { Principal } from '@aifactory/service-auth';

/** The issuer of the gateway's internal JWTs: INTERNAL_JWT_ISSUER's default, in the file-configured key set. */
export const GATEWAY_ISSUER = 'gateway';

/**
 * Refuses every caller but the gateway itself. A platform service's own
 * token could claim `sub: gateway` (issue 15, Service identity), so the
 * subject alone proves nothing: the token must also be issued by the
 * gateway, whose keys are configured from files and whose issuer name no
 * service identity may take.
 */
export function requireGateway(ctx: SubgraphHttpContext, what: string): Principal {
  const call = ctx.call;
  if (!call || call.issuer !== GATEWAY_ISSUER || call.principal.type !== 'service' || call.principal.subject !== 'gateway') {
    throw new AppError('AUTH_FORBIDDEN', `Only the gateway ${what}`);
  }
  return call.principal;
}
