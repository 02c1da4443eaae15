/**
 * Every subgraph's hand-written schema.prisma describes exactly the tables its
 * SQL migrations create: all six are migrated into one private database and
 * compared with the drift checker. A failure lists the differences.
 */
import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import { checkSchemaDrift, prismaSchemaFileOf, SUBGRAPHS } from '@aifactory/db-tools';
import { createTestDatabase, type TestDatabase } from '@aifactory/testing';

let db: TestDatabase;
let admin: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  admin = await db.admin();
}, 120_000);

afterAll(async () => {
  await db?.drop();
});

describe('schema.prisma against the migrated database', () => {
  it.each(SUBGRAPHS.map((subgraph) => [subgraph]))('%s has no drift', async (subgraph) => {
    const datamodel = await readFile(prismaSchemaFileOf(subgraph), 'utf8');

    const report = await checkSchemaDrift({ datamodel, client: admin, schema: subgraph });

    expect(report.schema).toBe(subgraph);
    expect(report.differences).toEqual([]);
  });
});
