import { loadConfigOrExit } from '@aifactory/config';
import { isAppError } from '@aifactory/errors';
import { createLogger, type Logger } from '@aifactory/logging';
import { dbToolsConfigSchema, type DbToolsConfig } from '../config.js';

/** Shared entry for the db:* commands: config once, one logger, a clear exit code. */
export async function runCommand(name: string, command: (config: DbToolsConfig, logger: Logger) => Promise<number>): Promise<void> {
  const config = loadConfigOrExit(dbToolsConfigSchema, name);
  const logger = createLogger({ service: name, level: config.LOG_LEVEL });
  try {
    process.exitCode = await command(config, logger);
  } catch (error) {
    if (isAppError(error)) {
      process.stderr.write(`${name}: ${error.message}\n`);
    } else {
      logger.error({ err: error }, `${name} failed`);
    }
    process.exitCode = 1;
  }
}
