import { loadConfigOrExit } from '@aifactory/config';
import { databaseConfigSchema, Outbox } from '@aifactory/subgraph-kit';
import { openIamDatabase } from '../data/database.js';
import { HierarchyStore } from '../data/hierarchy.js';
import { HierarchyService } from '../domain/hierarchy.js';
import { seedDemoHierarchy } from './demo.js';

// Prints the seeded ids as JSON on stdout, for the next seed step (billing) to use.
const config = loadConfigOrExit(databaseConfigSchema, 'iam seed');
const database = openIamDatabase(config);
try {
  const outbox = new Outbox({ schema: database.schema, subjectPrefix: config.EVENT_SUBJECT_PREFIX });
  const seeded = await seedDemoHierarchy(new HierarchyService(new HierarchyStore(database.prisma), outbox));
  process.stdout.write(`${JSON.stringify(seeded)}\n`);
} finally {
  await database.close();
}
