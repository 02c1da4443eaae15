import type { z } from 'zod';
import { loadConfigOrExit } from '@aifactory/config';
import { closeOnSignals } from '@aifactory/http';
import { createLogger, type Logger } from '@aifactory/logging';
import type { SubgraphConfig } from './config.js';

export interface StartedService {
  url: string;
  /** Stops accepting, finishes in-flight requests, then closes pools. */
  close(): Promise<void>;
}

/** A subgraph process: config parsed once, one logger, graceful shutdown on SIGTERM. */
export async function runSubgraphMain<S extends z.ZodType<SubgraphConfig>>(
  name: string,
  configSchema: S,
  start: (config: z.infer<S>, logger: Logger) => Promise<StartedService>,
): Promise<void> {
  const config = loadConfigOrExit(configSchema, name);
  const logger = createLogger({ service: name, level: config.LOG_LEVEL });
  // Handlers first: a SIGTERM that arrives while starting must still shut down cleanly.
  let service: StartedService | undefined;
  closeOnSignals(logger, [async () => service?.close()]);
  try {
    service = await start(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'could not start');
    logger.flush();
    process.exit(1);
  }
}
