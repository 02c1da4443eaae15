import { checkReadiness, type DependencyCheck, type DependencyStatus } from '@aifactory/backing-services';
import { AppError } from '@aifactory/errors';
import { sendJson, type RequestContext, type RouteHandler } from '@aifactory/http';
import { hasPlatformRole, type Principal } from '@aifactory/service-auth';

interface SubgraphStatus extends DependencyStatus {
  /** What the subgraph's own /readyz reported about its Postgres, Redis and NATS. */
  dependencies?: Record<string, DependencyStatus>;
}

export interface StatusRouteOptions {
  authenticate(ctx: RequestContext): Promise<Principal>;
  /** The gateway's own dependencies (Redis, NATS). */
  checks: Record<string, DependencyCheck>;
  subgraphUrls(): Map<string, string>;
  timeoutMs: number;
}

async function probeSubgraph(graphqlUrl: string, timeoutMs: number): Promise<SubgraphStatus> {
  const startedAt = performance.now();
  try {
    const response = await fetch(new URL('/readyz', graphqlUrl), { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await response.json().catch(() => ({}))) as { dependencies?: Record<string, DependencyStatus> };
    const latencyMs = Math.round(performance.now() - startedAt);
    return {
      status: response.ok ? 'up' : 'down',
      latencyMs,
      ...(response.ok ? {} : { error: `readyz answered ${response.status}` }),
      ...(body.dependencies ? { dependencies: body.dependencies } : {}),
    };
  } catch (error) {
    const reason = error instanceof Error && error.name === 'TimeoutError' ? 'timed out' : 'unreachable';
    return { status: 'down', latencyMs: Math.round(performance.now() - startedAt), error: reason };
  }
}

/**
 * `GET /status` for platform admins: every subgraph's readiness (which covers
 * its Postgres, Redis and NATS) and the gateway's own Redis and NATS, each
 * with its latency. Always 200 when the report could be made: it is a
 * report, and `/readyz` is what load balancers ask.
 */
export function statusRoute(options: StatusRouteOptions): RouteHandler {
  return async (ctx) => {
    const principal = await options.authenticate(ctx);
    if (!hasPlatformRole(principal, 'platform_admin')) throw new AppError('AUTH_FORBIDDEN', 'Platform status is for platform admins');
    const subgraphEntries = [...options.subgraphUrls()];
    const [gateway, ...subgraphs] = await Promise.all([
      checkReadiness(options.checks, options.timeoutMs),
      ...subgraphEntries.map(([, url]) => probeSubgraph(url, options.timeoutMs)),
    ]);
    const subgraphStatus = Object.fromEntries(subgraphEntries.map(([name], index) => [name, subgraphs[index]]));
    const allUp = gateway.ready && subgraphs.every((status) => status.status === 'up');
    sendJson(ctx.res, 200, { status: allUp ? 'ok' : 'degraded', gateway: gateway.dependencies, subgraphs: subgraphStatus });
  };
}
