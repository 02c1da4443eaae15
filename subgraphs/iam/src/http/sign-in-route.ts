import { AppError } from '@aifactory/errors';
import { isJsonContentType, parseJsonBody, readBody, sendJson } from '@aifactory/http';
import type { SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { UserService } from '../domain/users.js';
import { requireGateway } from './gateway-call.js';

const BODY_LIMIT_BYTES = 16 * 1024;

/**
 * `POST /api/internal/sign-in`: the gateway tells IAM about a verified human
 * it does not know yet, and gets their read-model entry back at once (the KV
 * follows within the second). Only the gateway's own service principal may
 * call it: clients reach `/api/iam/...` through the gateway as users.
 */
export function signInRoute(users: UserService): SubgraphHttpRoute {
  return {
    method: 'POST',
    path: '/api/internal/sign-in',
    access: 'internal',
    handle: async (ctx) => {
      const principal = requireGateway(ctx, 'signs users in');
      if (!isJsonContentType(ctx.req.headers['content-type'])) {
        throw new AppError('BAD_REQUEST_UNSUPPORTED_CONTENT_TYPE', 'Send the sign-in as application/json');
      }
      const body = parseJsonBody(await readBody(ctx.req, BODY_LIMIT_BYTES));
      const entry = await users.signIn({ actor: { type: 'service', id: principal.subject }, correlationId: ctx.correlationId }, body);
      sendJson(ctx.res, 200, { principal: entry });
    },
  };
}
