import { parseConfig } from '@aifactory/config';
import { gatewayConfigSchema } from '@aifactory/gateway/config';
import { startGateway, type RunningGateway } from '@aifactory/gateway/server';
import type { Logger } from '@aifactory/logging';
import type { FakeStripe } from '@aifactory/stripe-fake';
import type { StartedService } from '@aifactory/subgraph-kit';
import { startPlatformStripe, stripeWebhookUrl } from './dev-stripe.js';
import { SUBGRAPH_STARTERS } from './subgraphs.js';
import { gatewayEnvironment, subgraphEnvironment, type PlatformWiring } from './wiring.js';

export interface RunningPlatform {
  gatewayUrl: string;
  gateway: RunningGateway;
  subgraphUrls: Record<string, string>;
  /** This platform's fake Stripe: billing calls it, and it sends its events to the gateway's /webhooks/stripe. */
  stripe: FakeStripe;
  /** A further gateway instance on the same subgraphs, Redis and NATS (closed with the platform). */
  startAnotherGateway(): Promise<RunningGateway>;
  /** Stops one subgraph (tests of what keeps working while it is down). */
  stopSubgraph(name: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the subgraphs and the gateway inside this process on free ports,
 * for integration tests and benchmarks. Each service parses the same
 * environment records the dev stack gives its processes, so `wiring.nats`
 * connects each to that NATS as its own user here too. Billing's Stripe is a
 * fake of this platform's own, closed with it.
 */
export async function startPlatform(wiring: Omit<PlatformWiring, 'stripe'>, loggerFor: (service: string) => Logger): Promise<RunningPlatform> {
  const started: StartedService[] = [];
  const subgraphs = new Map<string, StartedService>();
  const subgraphUrls: Record<string, string> = {};
  const platformStripe = await startPlatformStripe();
  const platformWiring: PlatformWiring = { ...wiring, stripe: platformStripe.wiring };
  // The fake Stripe last: billing may still call it while it stops.
  const closeAll = async () => {
    for (const service of started.reverse()) await service.close();
    await platformStripe.close();
  };
  try {
    for (const { name, start } of SUBGRAPH_STARTERS) {
      const service = await start(subgraphEnvironment(platformWiring, name, 0), loggerFor(name));
      started.push(service);
      subgraphs.set(name, service);
      subgraphUrls[name] = `${service.url}/graphql`;
    }
    const gatewayConfig = parseConfig(gatewayConfigSchema, gatewayEnvironment(platformWiring, 0, subgraphUrls));
    const gateway = await startGateway(gatewayConfig, loggerFor('gateway'));
    started.push(gateway);
    platformStripe.stripe.setWebhookUrl(stripeWebhookUrl(gateway.url));
    return {
      gatewayUrl: gateway.url,
      gateway,
      subgraphUrls,
      stripe: platformStripe.stripe,
      startAnotherGateway: async () => {
        const another = await startGateway(gatewayConfig, loggerFor('gateway'));
        started.push(another);
        return another;
      },
      stopSubgraph: async (name) => {
        const service = subgraphs.get(name);
        if (!service) throw new Error(`no running subgraph ${name}`);
        subgraphs.delete(name);
        started.splice(started.indexOf(service), 1);
        await service.close();
      },
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
