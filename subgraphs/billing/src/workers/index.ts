import type { ConnectedServices } from '@aifactory/subgraph-kit';
import type { BillingConfig } from '../config.js';
import type { BillingServices } from '../services.js';

interface Stoppable {
  stop(): Promise<void>;
}

/**
 * billing's background work, started once NATS is connected and stopped at
 * shutdown in reverse order.
 */
export async function startBillingWorkers(services: BillingServices, config: BillingConfig, connected: ConnectedServices): Promise<Stoppable> {
  const started: Stoppable[] = [];
  try {
    void services;
    void config;
    void connected;
  } catch (error) {
    await stopAll(started);
    throw error;
  }
  return { stop: () => stopAll(started) };
}

async function stopAll(started: readonly Stoppable[]): Promise<void> {
  for (const worker of [...started].reverse()) await worker.stop();
}
