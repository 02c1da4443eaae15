import { isAppError } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import type { InternalTokenVerifier, VerifiedInternalCall } from '@aifactory/service-auth';
import type { ServiceMetrics } from '@aifactory/telemetry';

export type VerifyCall = (token: string | undefined) => Promise<VerifiedInternalCall>;

/**
 * Verification as a subgraph runs it: every call that arrives with a
 * service's own token is logged, one line per call, naming the calling
 * service, the party it acts for, the act chain, this audience and the
 * correlation id (never the token), so every service-to-service call is
 * attributable (issue 15, Service identity). Refusals are counted by code
 * and reason.
 */
export function attributedVerifier(verifier: InternalTokenVerifier, audience: string, logger: Logger, metrics: ServiceMetrics): VerifyCall {
  const verified = metrics.counter('aif_service_calls_total', 'Calls verified with a service identity token, by calling service.', ['caller']);
  const refused = metrics.counter('aif_internal_auth_refusals_total', 'Internal tokens refused, by error code and reason.', ['code', 'reason']);
  return async (token) => {
    let call: VerifiedInternalCall;
    try {
      call = await verifier.verify(token);
    } catch (error) {
      if (isAppError(error)) {
        const reason = (error.details as { reason?: unknown } | undefined)?.reason;
        refused.inc({ code: error.code, reason: typeof reason === 'string' ? reason : '-' });
      }
      throw error;
    }
    if (call.credential === 'service_identity') {
      verified.inc({ caller: call.issuer });
      const { onBehalfOf, actorChain, scopes } = call.principal;
      logger.info(
        {
          serviceCall: {
            caller: call.issuer,
            audience,
            scopes,
            ...(onBehalfOf ? { onBehalfOf: { type: onBehalfOf.type, subject: onBehalfOf.subject, ...(onBehalfOf.apiKeyId ? { apiKeyId: onBehalfOf.apiKeyId } : {}) } } : {}),
            ...(actorChain ? { actorChain } : {}),
          },
          tokenCorrelationId: call.correlationId,
        },
        'service call',
      );
    }
    return call;
  };
}
