import { z } from 'zod';
import { AppError, parseInput } from '@aifactory/errors';
import { isJsonContentType, parseJsonBody, readBody, sendJson } from '@aifactory/http';
import type { SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { ApiKeyService } from '../domain/api-keys.js';
import { requireGateway } from './gateway-call.js';

/** At most this many uses per call; the gateway batches and flushes more often rather than sending more. */
export const MAX_USES_PER_CALL = 500;
const BODY_LIMIT_BYTES = 256 * 1024;

const usageSchema = z.object({
  uses: z
    .array(
      z.object({
        keyId: z.string().regex(/^[a-z2-7]{20}$/),
        usedAt: z.iso.datetime({ offset: true }).transform((text) => new Date(text)),
        /** The secret's HMAC under a newer pepper, which the gateway made after verifying it with the stored one. */
        rehash: z.object({ pepperVersion: z.number().int().positive(), hash: z.string().min(1).max(200) }).optional(),
      }),
    )
    .max(MAX_USES_PER_CALL),
});

/**
 * `POST /api/internal/api-keys/usage`: the gateway reports which keys it
 * let through, and when (issue 15, last use). IAM writes a key's last use at
 * most once a minute, in one conditional statement, and moves a key to a
 * newer pepper version when the gateway re-hashed its secret, which
 * republishes the key's entry. Answers `{"updated": n}`, the keys changed.
 */
export function apiKeyUsageRoute(apiKeys: ApiKeyService): SubgraphHttpRoute {
  return {
    method: 'POST',
    path: '/api/internal/api-keys/usage',
    access: 'internal',
    handle: async (ctx) => {
      const principal = requireGateway(ctx, 'reports API key use');
      if (!isJsonContentType(ctx.req.headers['content-type'])) {
        throw new AppError('BAD_REQUEST_UNSUPPORTED_CONTENT_TYPE', 'Send the uses as application/json');
      }
      const body = parseInput(usageSchema, parseJsonBody(await readBody(ctx.req, BODY_LIMIT_BYTES)));
      const updated = await apiKeys.recordUsage({ actor: { type: 'service', id: principal.subject }, correlationId: ctx.correlationId }, body.uses);
      sendJson(ctx.res, 200, { updated });
    },
  };
}
