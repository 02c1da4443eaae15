import { writeFileSync } from 'node:fs';
import { loadRegistryData } from '@aifactory/contracts';
import { initialRegistrySql } from './initial-data-sql.js';

/** Writes migration 0004 from the registry files (see initial-data-sql.ts). */
const target = new URL('../../prisma/migrations/0004_registry_data/migration.sql', import.meta.url);
writeFileSync(target, initialRegistrySql(loadRegistryData()));
process.stdout.write(`wrote ${target.pathname}\n`);
