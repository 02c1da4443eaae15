import { loadConfigOrExit } from '@aifactory/config';
import { databaseConfigSchema } from '@aifactory/subgraph-kit';
import { openIamDatabase } from '../data/database.js';
import { HierarchyStore } from '../data/hierarchy.js';
import { HierarchyService } from '../domain/hierarchy.js';
import { seedDemoHierarchy } from './demo.js';

// Prints the seeded ids as JSON on stdout, for the next seed step (billing) to use.
const config = loadConfigOrExit(databaseConfigSchema, 'iam seed');
const database = openIamDatabase(config);
try {
  const seeded = await seedDemoHierarchy(new HierarchyService(new HierarchyStore(database.prisma)));
  process.stdout.write(`${JSON.stringify(seeded)}\n`);
} finally {
  await database.close();
}
