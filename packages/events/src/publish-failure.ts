import { JetStreamApiError } from '@nats-io/jetstream';
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
} from '@nats-io/transport-node';

/**
 * Why a publish did not get a positive ack (ARCHITECTURE.md, Decisions:
 * Outbox and events):
 * - `rejected`: the broker answered with an error (too large, a failed
 *   expectation, a permission violation). The message itself is the problem,
 *   so the attempt counts toward `failed`.
 * - `no_stream`: the server answered "no responders" (503): nothing listens
 *   on the subject. That means no stream covers it when JetStream itself is
 *   up (the relay checks), which counts like `rejected`; otherwise JetStream
 *   is down, an outage.
 * - `outage`: no answer at all (no connection, a timeout). The broker is the
 *   problem, so the relay pauses and counts nothing.
 */
export type PublishFailure =
  | { kind: 'rejected'; reason: string }
  | { kind: 'no_stream'; reason: string }
  | { kind: 'outage'; reason: string };

export function classifyPublishError(error: unknown): PublishFailure {
  for (const link of causeChain(error)) {
    if (link instanceof JetStreamApiError) {
      return { kind: 'rejected', reason: `jetstream refused the message (${link.code}): ${link.message}` };
    }
    if (link instanceof NoRespondersError) return { kind: 'no_stream', reason: `no responders on ${link.subject}` };
    if (link instanceof PermissionViolationError) {
      return { kind: 'rejected', reason: `permission violation publishing to ${link.subject}` };
    }
    if (
      link instanceof TimeoutError ||
      link instanceof ClosedConnectionError ||
      link instanceof ConnectionError ||
      link instanceof DrainingConnectionError
    ) {
      return { kind: 'outage', reason: `${link.name}: ${link.message}` };
    }
    // nats.js refuses requests this way while it knows it is disconnected.
    if (link instanceof RequestError && link.cause === undefined && /disconnect/i.test(link.message)) {
      return { kind: 'outage', reason: link.message };
    }
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { kind: 'rejected', reason: message };
}

function* causeChain(error: unknown): Generator<unknown> {
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth += 1) {
    yield current;
    current = current instanceof Error ? current.cause : undefined;
  }
}
