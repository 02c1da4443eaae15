/**
 * Runs the drift checker against a throwaway database built with plain SQL,
 * first with a Prisma schema that matches it, then with copies of that schema
 * that are wrong in exactly one way each.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { checkSchemaDrift } from './drift.js';

const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const DATABASE = `aif_drift_${randomBytes(6).toString('hex')}`;

const MIGRATION_SQL = `
  CREATE SCHEMA drift;
  CREATE TYPE drift.org_status AS ENUM ('active', 'suspended');

  CREATE TABLE drift.organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        varchar(64) NOT NULL UNIQUE,
    name        text NOT NULL,
    status      drift.org_status NOT NULL DEFAULT 'active',
    country     char(2) NOT NULL DEFAULT 'DE',
    description text,
    created_at  timestamptz(3) NOT NULL DEFAULT now()
  );
  CREATE UNIQUE INDEX organizations_name_key ON drift.organizations (name);

  CREATE TABLE drift.members (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES drift.organizations (id) ON DELETE CASCADE,
    email           text NOT NULL,
    role            text NOT NULL DEFAULT 'member',
    login_count     bigint NOT NULL DEFAULT 0,
    nickname        text,
    tags            text[] NOT NULL DEFAULT '{}',
    joined_at       timestamptz(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (organization_id, email)
  );

  -- The migration runner's own bookkeeping; it has no model on purpose.
  CREATE TABLE drift._prisma_migrations (id text PRIMARY KEY);
`;

const MATCHING_SCHEMA = `
datasource db {
  provider = "postgresql"
}

enum OrgStatus {
  active
  suspended

  @@map("org_status")
}

model Organization {
  id          String    @id @default(dbgenerated("gen_random_uuid()")) @db.Uuid
  slug        String    @unique @db.VarChar(64)
  name        String    @unique
  status      OrgStatus @default(active)
  country     String    @default("DE") @db.Char(2)
  description String?
  createdAt   DateTime  @default(now()) @map("created_at") @db.Timestamptz(3)
  members     Member[]

  @@map("organizations")
}

model Member {
  id             String       @id @default(dbgenerated("gen_random_uuid()")) @db.Uuid
  organizationId String       @map("organization_id") @db.Uuid
  email          String
  role           String       @default("member")
  loginCount     BigInt       @default(0) @map("login_count")
  nickname       String?
  tags           String[]     @default([])
  joinedAt       DateTime     @default(now()) @map("joined_at") @db.Timestamptz(3)
  organization   Organization @relation(fields: [organizationId], references: [id], onDelete: Cascade)

  @@unique([organizationId, email])
  @@map("members")
}
`;

/** The matching schema with each `from` replaced by `to`; throws if a `from` is absent, so no test passes vacuously. */
function schemaWith(...edits: Array<[from: string, to: string]>): string {
  return edits.reduce((text, [from, to]) => {
    if (!text.includes(from)) throw new Error(`test schema does not contain ${JSON.stringify(from)}`);
    return text.replace(from, to);
  }, MATCHING_SCHEMA);
}

let admin: pg.Client;
let client: pg.Client;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${DATABASE}`;
  client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  await client.query(MIGRATION_SQL);
});

afterAll(async () => {
  await client?.end();
  await admin?.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await admin?.end();
});

async function differences(datamodel: string, ignoreTables?: string[]): Promise<string[]> {
  const report = await checkSchemaDrift({ datamodel, client, schema: 'drift', ignoreTables });
  expect(report.schema).toBe('drift');
  return report.differences;
}

describe('checkSchemaDrift', () => {
  it('finds no drift when the Prisma schema matches the migrated tables', async () => {
    expect(await differences(MATCHING_SCHEMA)).toEqual([]);
  });

  it('does not depend on the session search_path', async () => {
    // With the schema on the path, format_type and pg_get_expr stop qualifying its types.
    await client.query('SET search_path TO drift, public');
    try {
      expect(await differences(MATCHING_SCHEMA)).toEqual([]);
    } finally {
      await client.query('RESET search_path');
    }
  });

  it('reports the migration table when it is no longer ignored', async () => {
    expect(await differences(MATCHING_SCHEMA, [])).toEqual([
      'drift._prisma_migrations: table in database, missing in Prisma',
    ]);
  });

  it('reports a different native type', async () => {
    const datamodel = schemaWith(['@unique @db.VarChar(64)', '@unique @db.VarChar(32)']);
    expect(await differences(datamodel)).toEqual([
      'drift.organizations.slug: type character varying(32) in Prisma, character varying(64) in database',
    ]);
  });

  it('reports a Prisma default type where the database has a native type', async () => {
    const datamodel = schemaWith([
      'organizationId String       @map("organization_id") @db.Uuid',
      'organizationId String       @map("organization_id")',
    ]);
    expect(await differences(datamodel)).toContain(
      'drift.members.organization_id: type text in Prisma, uuid in database',
    );
  });

  it('reports a nullable field over a NOT NULL column', async () => {
    const datamodel = schemaWith(['email          String', 'email          String?']);
    expect(await differences(datamodel)).toEqual(['drift.members.email: nullable in Prisma, NOT NULL in database']);
  });

  it('reports a different literal default', async () => {
    const datamodel = schemaWith(['@default("member")', '@default("owner")']);
    expect(await differences(datamodel)).toEqual(['drift.members.role: default owner in Prisma, member in database']);
  });

  it('reports a default the Prisma schema does not declare', async () => {
    const datamodel = schemaWith(['DateTime  @default(now()) @map("created_at")', 'DateTime  @map("created_at")']);
    expect(await differences(datamodel)).toEqual([
      'drift.organizations.created_at: default none in Prisma, CURRENT_TIMESTAMP in database',
    ]);
  });

  it('reports an enum default that differs', async () => {
    const datamodel = schemaWith(['@default(active)', '@default(suspended)']);
    expect(await differences(datamodel)).toEqual([
      'drift.organizations.status: default suspended in Prisma, active in database',
    ]);
  });

  it('reports a unique index the Prisma schema does not declare', async () => {
    const datamodel = schemaWith(['name        String    @unique', 'name        String']);
    expect(await differences(datamodel)).toEqual(['drift.organizations.name: unique in database, missing in Prisma']);
  });

  it('reports a composite unique constraint the Prisma schema does not declare', async () => {
    const datamodel = schemaWith(['@@unique([organizationId, email])', '']);
    expect(await differences(datamodel)).toEqual([
      'drift.members.(organization_id, email): unique in database, missing in Prisma',
    ]);
  });

  it('reports a unique the database does not have', async () => {
    const datamodel = schemaWith(['nickname       String?', 'nickname       String? @unique']);
    expect(await differences(datamodel)).toEqual(['drift.members.nickname: unique in Prisma, missing in database']);
  });

  it('reports a primary key over different columns', async () => {
    const datamodel = schemaWith(
      ['id             String       @id @default', 'id             String       @default'],
      ['@@unique([organizationId, email])', '@@unique([organizationId, email])\n  @@id([id, email])'],
    );
    expect(await differences(datamodel)).toEqual([
      'drift.members: primary key (id, email) in Prisma, (id) in database',
    ]);
  });

  it('reports a foreign key without a relation', async () => {
    const datamodel = schemaWith(
      ['  members     Member[]\n', ''],
      ['  organization   Organization @relation(fields: [organizationId], references: [id], onDelete: Cascade)\n', ''],
    );
    expect(await differences(datamodel)).toEqual([
      'drift.members.organization_id: foreign key to drift.organizations(id) in database, missing in Prisma',
    ]);
  });

  it('reports a relation that points elsewhere', async () => {
    const datamodel = schemaWith(['references: [id], onDelete: Cascade', 'references: [slug], onDelete: Cascade']);
    expect(await differences(datamodel)).toEqual(
      expect.arrayContaining([
        'drift.members.organization_id: foreign key to drift.organizations(slug) in Prisma, missing in database',
        'drift.members.organization_id: foreign key to drift.organizations(id) in database, missing in Prisma',
      ]),
    );
  });

  it('reports a different ON DELETE action', async () => {
    const datamodel = schemaWith(['onDelete: Cascade', 'onDelete: Restrict']);
    expect(await differences(datamodel)).toEqual([
      'drift.members.organization_id: foreign key to drift.organizations(id) ON DELETE Restrict in Prisma, Cascade in database',
    ]);
  });

  it('reports an enum value the database does not have', async () => {
    const datamodel = schemaWith(['  suspended\n', '  suspended\n  archived\n']);
    expect(await differences(datamodel)).toEqual([
      'drift.org_status: enum values (active, suspended, archived) in Prisma, (active, suspended) in database',
    ]);
  });

  it('reports an enum value the Prisma schema does not have', async () => {
    const datamodel = schemaWith(['  suspended\n', '']);
    expect(await differences(datamodel)).toEqual([
      'drift.org_status: enum values (active) in Prisma, (active, suspended) in database',
    ]);
  });

  it('reports a model without a table', async () => {
    const datamodel = `${MATCHING_SCHEMA}
model Team {
  id String @id @db.Uuid

  @@map("teams")
}
`;
    expect(await differences(datamodel)).toEqual(['drift.teams: table in Prisma (model Team), missing in database']);
  });

  it('reports a table without a model', async () => {
    const memberModel = MATCHING_SCHEMA.slice(MATCHING_SCHEMA.indexOf('model Member {'));
    const datamodel = schemaWith([memberModel, ''], ['  members     Member[]\n', '']);
    expect(await differences(datamodel)).toEqual(['drift.members: table in database, missing in Prisma']);
  });

  it('reports a field without a column and a column without a field', async () => {
    const datamodel = schemaWith(['nickname       String?', 'nickName       String?']);
    expect(await differences(datamodel)).toEqual([
      'drift.members.nickName: column in Prisma (field Member.nickName), missing in database',
      'drift.members.nickname: column in database, missing in Prisma',
    ]);
  });
});
