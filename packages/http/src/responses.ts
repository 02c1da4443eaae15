import type { ServerResponse } from 'node:http';
import { toPublicError } from '@aifactory/errors';
import { isAppError } from '@aifactory/errors';

export const CORRELATION_HEADER = 'x-correlation-id';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload).toString(),
    ...headers,
  });
  res.end(payload);
}

/** The GraphQL shape of a refusal made before any GraphQL execution. */
export function sendGraphQLError(res: ServerResponse, error: unknown, correlationId: string, headers: Record<string, string> = {}): void {
  const { code, message } = toPublicError(error, correlationId);
  const status = isAppError(error) ? error.httpStatus : 500;
  sendJson(res, status, { errors: [{ message, extensions: { code, correlationId } }] }, headers);
}

/** The REST envelope, for every route that is not GraphQL. */
export function sendRestError(res: ServerResponse, error: unknown, correlationId: string): void {
  const publicError = toPublicError(error, correlationId);
  const status = isAppError(error) ? error.httpStatus : 500;
  sendJson(res, status, { error: publicError });
}

/** `GET /metrics`: the Prometheus text of a registry (prom-client's, through @aifactory/telemetry). */
export function metricsRoute(source: { render(): Promise<{ contentType: string; body: string }> }) {
  return async ({ res }: { res: ServerResponse }): Promise<void> => {
    const { contentType, body } = await source.render();
    res.writeHead(200, { 'content-type': contentType });
    res.end(body);
  };
}
