import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '@aifactory/config';
import { devConfigSchema } from './dev-config.js';
import { ensureDevKeys } from './dev-keys.js';
import { devAssertion } from './dev-token.js';

// npm run dev:token -- --email alice@example.com [--role platform_admin ...] [--ttl 3600]
const { values } = parseArgs({
  options: {
    email: { type: 'string' },
    role: { type: 'string', multiple: true, default: [] },
    ttl: { type: 'string', default: '3600' },
  },
});
if (!values.email) {
  process.stderr.write('usage: npm run dev:token -- --email alice@example.com [--role platform_admin] [--ttl seconds]\n');
  process.exit(2);
}
const config = loadConfigOrExit(devConfigSchema, 'dev:token');
const { assertionKey } = await ensureDevKeys();
try {
  process.stdout.write(`${await devAssertion(config, assertionKey, { email: values.email, roles: values.role, expiresInSeconds: Number(values.ttl) })}\n`);
} catch (error) {
  process.stderr.write(`dev:token: ${(error as Error).message}\n`);
  process.exit(2);
}
