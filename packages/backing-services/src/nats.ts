import type { Logger } from '@aifactory/logging';
import { connect, type NatsConnection, type Status } from '@nats-io/transport-node';
import { safeReason } from './readiness.js';

export interface NatsOptions {
  servers: string[];
  /** Shown in the server's connection list and in log lines. */
  name: string;
  user?: string;
  pass?: string;
  logger: Logger;
}

/**
 * Resolves once connected; until then it keeps trying, so a service started
 * before NATS simply waits. Afterwards it reconnects forever, with jitter so
 * a fleet does not reconnect in lockstep after a NATS restart.
 */
export async function connectNats(options: NatsOptions): Promise<NatsConnection> {
  const nc = await connect({
    servers: options.servers,
    name: options.name,
    user: options.user,
    pass: options.pass,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    reconnectJitter: 500,
  });
  options.logger.info({ nats: options.name, server: nc.getServer() }, 'nats connected');
  void logStatusChanges(nc, options.name, options.logger);
  // Registered first on the close promise, so the line is written before anyone awaiting closure (drainNats) goes on.
  void nc.closed().then((error) =>
    options.logger.info({ nats: options.name, ...(error ? { error: safeReason(error) } : {}) }, 'nats connection closed'),
  );
  return nc;
}

async function logStatusChanges(nc: NatsConnection, name: string, logger: Logger): Promise<void> {
  for await (const status of nc.status()) logStatus(status, name, logger);
}

function logStatus(status: Status, name: string, logger: Logger): void {
  switch (status.type) {
    case 'disconnect':
      logger.warn({ nats: name, server: status.server }, 'nats disconnected');
      return;
    case 'reconnect':
      logger.info({ nats: name, server: status.server }, 'nats reconnected');
      return;
    case 'ldm':
      logger.warn({ nats: name, server: status.server }, 'nats server entering lame duck mode');
      return;
    case 'error':
      logger.warn({ nats: name, error: safeReason(status.error) }, 'nats error');
      return;
    case 'staleConnection':
      logger.warn({ nats: name }, 'nats connection stale');
      return;
    case 'slowConsumer':
      logger.warn({ nats: name, subject: status.sub.getSubject(), pending: status.pending }, 'nats slow consumer');
      return;
    case 'update':
      logger.info({ nats: name, added: status.added ?? [], deleted: status.deleted ?? [] }, 'nats cluster changed');
      return;
    case 'forceReconnect':
      logger.info({ nats: name }, 'nats reconnect forced');
      return;
    // Logged from closed(), in order with shutdown; the status stream may report it later.
    case 'close':
      return;
    // Once per attempt or per ping: the disconnect and reconnect lines already tell the story.
    case 'reconnecting':
    case 'ping':
      return;
    default: {
      const unknown: never = status;
      logger.info({ nats: name, status: unknown }, 'nats status');
    }
  }
}

/**
 * Drains subscriptions and closes, resolving once the connection is closed.
 * A connection already closed is still awaited through `closed()`: the
 * client marks it closed before that promise settles, and its "nats
 * connection closed" line (registered first on it) must be written before
 * the caller goes on to log the end of its shutdown.
 */
export async function drainNats(nc: NatsConnection): Promise<void> {
  if (!nc.isClosed() && !nc.isDraining()) await nc.drain();
  await nc.closed();
}
