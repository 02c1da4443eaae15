import { loadConfigOrExit } from '@aifactory/config';
import { closeOnSignals } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
import { gatewayConfigSchema } from './config.js';
import { startGateway, type RunningGateway } from './server.js';

const config = loadConfigOrExit(gatewayConfigSchema, 'gateway');
const logger = createLogger({ service: 'gateway', level: config.LOG_LEVEL });
// Handlers first: a SIGTERM that arrives while starting must still shut down cleanly.
let gateway: RunningGateway | undefined;
closeOnSignals(logger, [async () => gateway?.close()]);
try {
  gateway = await startGateway(config, logger);
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  logger.flush();
  process.exit(1);
}
