import { loadConfigOrExit } from '@aifactory/config';
import { devConfigSchema, layoutOf } from './dev-config.js';
import { runDevSeed } from './seed.js';

const config = loadConfigOrExit(devConfigSchema, 'seed');
// The admin is whom `npm run dev:token -- --email $DEV_ADMIN_EMAIL` names, on this stack's dev IdP.
const seeded = await runDevSeed(layoutOf(config), { admin: { issuer: config.DEV_IDP_ISSUER, email: config.DEV_ADMIN_EMAIL } });
process.stdout.write(`${JSON.stringify(seeded, null, 2)}\n`);
