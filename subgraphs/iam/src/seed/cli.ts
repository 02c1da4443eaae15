import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfigOrExit, z } from '@aifactory/config';
import { databaseConfigSchema } from '@aifactory/subgraph-kit';
import { openIamDatabase } from '../data/database.js';
import { createIamServices } from '../services.js';
import { registerServicePublicKeys, seedDemoHierarchy, type ServicePublicKey } from './demo.js';

const seedConfigSchema = databaseConfigSchema.extend({
  DEFAULT_BILLING_CURRENCY: z.string().regex(/^[A-Z]{3}$/).default('USD'),
  /** The dev identity provider's issuer (tools/devstack DEV_IDP_ISSUER) and the demo admin's email there. */
  DEMO_ADMIN_ISSUER: z.string().min(1).default('https://authenticate.aifactory.localhost'),
  DEMO_ADMIN_EMAIL: z.email().default('admin@aifactory.localhost'),
});

// `--service-public-key <name>=<file>` (repeatable): a platform service's public key to register with its identity.
const { values } = parseArgs({ options: { 'service-public-key': { type: 'string', multiple: true, default: [] } } });
const serviceKeys: ServicePublicKey[] = await Promise.all(
  values['service-public-key'].map(async (pair) => {
    const at = pair.indexOf('=');
    const name = pair.slice(0, Math.max(at, 0));
    const file = pair.slice(at + 1);
    if (at < 1 || !file) throw new Error(`--service-public-key takes <name>=<file>, not ${pair}`);
    return { name, publicKeyPem: await readFile(file, 'utf8') };
  }),
);

// Prints the seeded ids as JSON on stdout, for the next seed step (billing) to use.
const config = loadConfigOrExit(seedConfigSchema, 'iam seed');
const database = openIamDatabase(config);
try {
  const services = createIamServices(database, config);
  const seeded = await seedDemoHierarchy(services, { issuer: config.DEMO_ADMIN_ISSUER, email: config.DEMO_ADMIN_EMAIL });
  const registered = serviceKeys.length === 0 ? {} : { serviceKeys: await registerServicePublicKeys(services, serviceKeys) };
  process.stdout.write(`${JSON.stringify({ ...seeded, ...registered })}\n`);
} finally {
  await database.close();
}
