import { loadConfigOrExit } from '@aifactory/config';
import { devConfigSchema, layoutOf } from './dev-config.js';
import { runDevSeed } from './seed.js';

const config = loadConfigOrExit(devConfigSchema, 'seed');
process.stdout.write(`${JSON.stringify(await runDevSeed(layoutOf(config)), null, 2)}\n`);
