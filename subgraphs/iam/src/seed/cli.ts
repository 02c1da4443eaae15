import { loadConfigOrExit, z } from '@aifactory/config';
import { databaseConfigSchema } from '@aifactory/subgraph-kit';
import { openIamDatabase } from '../data/database.js';
import { createIamServices } from '../services.js';
import { seedDemoHierarchy } from './demo.js';

const seedConfigSchema = databaseConfigSchema.extend({
  DEFAULT_BILLING_CURRENCY: z.string().regex(/^[A-Z]{3}$/).default('USD'),
  /** The dev identity provider's issuer (tools/devstack DEV_IDP_ISSUER) and the demo admin's email there. */
  DEMO_ADMIN_ISSUER: z.string().min(1).default('https://authenticate.aifactory.localhost'),
  DEMO_ADMIN_EMAIL: z.email().default('admin@aifactory.localhost'),
});

// Prints the seeded ids as JSON on stdout, for the next seed step (billing) to use.
const config = loadConfigOrExit(seedConfigSchema, 'iam seed');
const database = openIamDatabase(config);
try {
  const seeded = await seedDemoHierarchy(createIamServices(database, config), { issuer: config.DEMO_ADMIN_ISSUER, email: config.DEMO_ADMIN_EMAIL });
  process.stdout.write(`${JSON.stringify(seeded)}\n`);
} finally {
  await database.close();
}
