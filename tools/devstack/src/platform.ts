import { parseConfig } from '@aifactory/config';
import { gatewayConfigSchema } from '@aifactory/gateway/config';
import { startGateway, type RunningGateway } from '@aifactory/gateway/server';
import type { Logger } from '@aifactory/logging';
import type { StartedService } from '@aifactory/subgraph-kit';
import { SUBGRAPH_STARTERS } from './subgraphs.js';
import { gatewayEnvironment, subgraphEnvironment, type PlatformWiring } from './wiring.js';

export interface RunningPlatform {
  gatewayUrl: string;
  gateway: RunningGateway;
  subgraphUrls: Record<string, string>;
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
 * connects each to that NATS as its own user here too.
 */
export async function startPlatform(wiring: PlatformWiring, loggerFor: (service: string) => Logger): Promise<RunningPlatform> {
  const started: StartedService[] = [];
  const subgraphs = new Map<string, StartedService>();
  const subgraphUrls: Record<string, string> = {};
  const closeAll = async () => {
    for (const service of started.reverse()) await service.close();
  };
  try {
    for (const { name, start } of SUBGRAPH_STARTERS) {
      const service = await start(subgraphEnvironment(wiring, name, 0), loggerFor(name));
      started.push(service);
      subgraphs.set(name, service);
      subgraphUrls[name] = `${service.url}/graphql`;
    }
    const gatewayConfig = parseConfig(gatewayConfigSchema, gatewayEnvironment(wiring, 0, subgraphUrls));
    const gateway = await startGateway(gatewayConfig, loggerFor('gateway'));
    started.push(gateway);
    return {
      gatewayUrl: gateway.url,
      gateway,
      subgraphUrls,
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
