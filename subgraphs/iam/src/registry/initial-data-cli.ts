import { mkdirSync, writeFileSync } from 'node:fs';
import { loadRegistryData } from '@aifactory/contracts';
import { REGISTRY_MIGRATIONS, registryMigrationSql } from './initial-data-sql.js';

/** Writes every registry migration (0004 and the later ones, see initial-data-sql.ts) from the registry files. */
const data = loadRegistryData();
for (const migration of REGISTRY_MIGRATIONS) {
  const folder = new URL(`../../prisma/migrations/${migration.folder}/`, import.meta.url);
  mkdirSync(folder, { recursive: true });
  const target = new URL('migration.sql', folder);
  writeFileSync(target, registryMigrationSql(data, migration.since));
  process.stdout.write(`wrote ${target.pathname}\n`);
}
