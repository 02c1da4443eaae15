/**
 * What bootstrap and the migrations leave behind for the roles, on one private
 * database with all six subgraphs migrated: bootstrap is idempotent, every app
 * role is fenced into its own schema with data access only, and no role of the
 * database's prefix is privileged. Catalog checks are backed by real
 * connections as the app roles wherever a query can show the refusal.
 */
import pg from 'pg';
import { bootstrapDatabase, rolesOf, SUBGRAPHS } from '@aifactory/db-tools';
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

const prefix = (): string => db.layout.rolePrefix;
const appRoles = (): string[] => SUBGRAPHS.map((subgraph) => rolesOf(subgraph, prefix()).app);
const ownerRoles = (): string[] => SUBGRAPHS.map((subgraph) => rolesOf(subgraph, prefix()).owner);

/** Runs fn on a fresh connection as the given subgraph's app role. */
async function asApp<T>(subgraph: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: db.appUrl(subgraph) });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The SQLSTATE a statement fails with, or 'ok' when it succeeds. */
async function outcome(client: pg.Client, sql: string, params: unknown[] = []): Promise<string> {
  try {
    await client.query(sql, params);
    return 'ok';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;

async function tablesOf(schema: string): Promise<string[]> {
  const { rows } = await admin.query<{ tablename: string }>(
    'SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename',
    [schema],
  );
  return rows.map((row) => row.tablename);
}

/** Everything bootstrap decides about roles, schemas and the database, as the catalogs show it. */
async function snapshot(): Promise<Record<string, unknown[]>> {
  const schemas = [...SUBGRAPHS, 'public'];
  const queries: Record<string, [string, unknown[]]> = {
    roles: [
      `SELECT oid::int, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
              rolconnlimit, rolvaliduntil, rolbypassrls, rolconfig
         FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname`,
      [prefix()],
    ],
    memberships: [
      `SELECT r.rolname AS role, m.rolname AS member, g.rolname AS grantor, am.admin_option
         FROM pg_auth_members am
         JOIN pg_roles r ON r.oid = am.roleid
         JOIN pg_roles m ON m.oid = am.member
         LEFT JOIN pg_roles g ON g.oid = am.grantor
        WHERE starts_with(r.rolname, $1) OR starts_with(m.rolname, $1)
        ORDER BY 1, 2, 3`,
      [prefix()],
    ],
    schemas: [
      `SELECT oid::int, nspname, nspowner::regrole::text AS owner, nspacl::text AS acl
         FROM pg_namespace WHERE nspname = ANY($1) ORDER BY nspname`,
      [schemas],
    ],
    defaultAcls: [
      `SELECT defaclrole::regrole::text AS role, defaclnamespace::regnamespace::text AS schema, defaclobjtype, defaclacl::text AS acl
         FROM pg_default_acl ORDER BY 1, 2, 3`,
      [],
    ],
    tableAcls: [
      `SELECT n.nspname, c.relname, c.relowner::regrole::text AS owner, c.relacl::text AS acl
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
        ORDER BY 1, 2`,
      [schemas],
    ],
    database: [
      'SELECT oid::int, datname, datdba::regrole::text AS owner, datacl::text AS acl FROM pg_database WHERE datname = $1',
      [db.layout.database],
    ],
    roleSettings: [
      `SELECT setrole::regrole::text AS role, setconfig
         FROM pg_db_role_setting
        WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = $1)
        ORDER BY 1`,
      [db.layout.database],
    ],
  };
  const result: Record<string, unknown[]> = {};
  for (const [name, [sql, params]] of Object.entries(queries)) result[name] = (await admin.query(sql, params)).rows;
  return result;
}

describe('bootstrap', () => {
  it('changes nothing when run again on a bootstrapped, migrated database', async () => {
    const before = await snapshot();
    // The snapshot has something to compare: all twelve roles, a search_path per app role, ACLs set.
    expect(before.roles).toHaveLength(12);
    expect(before.roleSettings).toHaveLength(6);
    expect(before.defaultAcls).toHaveLength(12);
    expect((before.database?.[0] as { acl: string | null } | undefined)?.acl).toEqual(expect.any(String));

    await bootstrapDatabase({ ...db.layout, subgraphs: SUBGRAPHS });

    expect(await snapshot()).toEqual(before);
  });
});

describe('role attributes', () => {
  it('gives no role of the prefix SUPERUSER, BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION', async () => {
    const { rows } = await admin.query<{ rolname: string }>(
      `SELECT rolname FROM pg_roles
        WHERE starts_with(rolname, $1) AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb OR rolreplication)`,
      [prefix()],
    );
    expect(rows).toEqual([]);
    const all = await admin.query('SELECT 1 FROM pg_roles WHERE starts_with(rolname, $1)', [prefix()]);
    expect(all.rowCount).toBe(12);
  });

  it('lets app roles log in and keeps owner roles from logging in', async () => {
    const { rows } = await admin.query<{ rolname: string; rolcanlogin: boolean }>(
      'SELECT rolname, rolcanlogin FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname',
      [prefix()],
    );
    const canLogin = Object.fromEntries(rows.map((row) => [row.rolname, row.rolcanlogin]));
    for (const app of appRoles()) expect([app, canLogin[app]]).toEqual([app, true]);
    for (const owner of ownerRoles()) expect([owner, canLogin[owner]]).toEqual([owner, false]);

    for (const subgraph of SUBGRAPHS) {
      expect(await asApp(subgraph, async (client) => (await client.query('SELECT current_user AS u')).rows[0].u)).toBe(
        rolesOf(subgraph, prefix()).app,
      );
    }
    const ownerUrl = new URL(db.appUrl('iam'));
    ownerUrl.username = rolesOf('iam', prefix()).owner;
    const owner = new pg.Client({ connectionString: ownerUrl.toString() });
    await expect(owner.connect()).rejects.toMatchObject({ code: '28000' });
    await owner.end().catch(() => undefined);
  });
});

describe('schema isolation', () => {
  it('gives no app role USAGE on another domain schema or SELECT/INSERT on its tables', async () => {
    const violations: string[] = [];
    for (const subgraph of SUBGRAPHS) {
      const app = rolesOf(subgraph, prefix()).app;
      const own = await admin.query<{ usage: boolean }>("SELECT has_schema_privilege($1, $2, 'USAGE') AS usage", [app, subgraph]);
      // The check below would pass trivially if the role could not see anything at all.
      expect([app, subgraph, own.rows[0]?.usage]).toEqual([app, subgraph, true]);
      for (const other of SUBGRAPHS.filter((candidate) => candidate !== subgraph)) {
        const usage = await admin.query<{ usage: boolean }>("SELECT has_schema_privilege($1, $2, 'USAGE') AS usage", [app, other]);
        if (usage.rows[0]?.usage !== false) violations.push(`${app} has USAGE on schema ${other}`);
        const tables = await admin.query<{ relname: string; can_select: boolean; can_insert: boolean }>(
          `SELECT c.relname,
                  has_table_privilege($1, c.oid, 'SELECT') AS can_select,
                  has_table_privilege($1, c.oid, 'INSERT') AS can_insert
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $2 AND c.relkind IN ('r', 'p', 'v', 'm')`,
          [app, other],
        );
        // The migrations' tables are there to be checked, not only the runner's history table.
        expect([other, tables.rows.some((table) => table.relname !== '_prisma_migrations')]).toEqual([other, true]);
        for (const table of tables.rows) {
          if (table.can_select) violations.push(`${app} may SELECT ${other}.${table.relname}`);
          if (table.can_insert) violations.push(`${app} may INSERT into ${other}.${table.relname}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('refuses every app role a SELECT on a table of each other domain schema when connected as that role', async () => {
    const sampleTable = new Map<string, string>();
    for (const subgraph of SUBGRAPHS) {
      const table = (await tablesOf(subgraph)).find((name) => name !== '_prisma_migrations');
      if (!table) throw new Error(`schema ${subgraph} has no table`);
      sampleTable.set(subgraph, table);
    }
    const outcomes: string[] = [];
    const expected: string[] = [];
    for (const subgraph of SUBGRAPHS) {
      await asApp(subgraph, async (client) => {
        // Its own table is readable, so the refusals below are about the schema, not the connection.
        const own = `SELECT 1 FROM ${quote(subgraph)}.${quote(sampleTable.get(subgraph)!)} LIMIT 1`;
        outcomes.push(`${subgraph} -> ${subgraph}: ${await outcome(client, own)}`);
        expected.push(`${subgraph} -> ${subgraph}: ok`);
        for (const other of SUBGRAPHS.filter((candidate) => candidate !== subgraph)) {
          const sql = `SELECT 1 FROM ${quote(other)}.${quote(sampleTable.get(other)!)} LIMIT 1`;
          outcomes.push(`${subgraph} -> ${other}: ${await outcome(client, sql)}`);
          expected.push(`${subgraph} -> ${other}: 42501`);
        }
      });
    }
    expect(outcomes).toEqual(expected);
  });

  it('lets nobody CREATE in the public schema', async () => {
    const { rows } = await admin.query<{ rolname: string; can_create: boolean }>(
      "SELECT rolname, has_schema_privilege(rolname, 'public', 'CREATE') AS can_create FROM pg_roles WHERE starts_with(rolname, $1)",
      [prefix()],
    );
    expect(rows).toHaveLength(12);
    expect(rows.filter((row) => row.can_create).map((row) => row.rolname)).toEqual([]);

    const outcomes: Record<string, string> = {};
    for (const subgraph of SUBGRAPHS) {
      outcomes[subgraph] = await asApp(subgraph, (client) => outcome(client, 'CREATE TABLE public.x (a int)'));
    }
    expect(outcomes).toEqual(Object.fromEntries(SUBGRAPHS.map((subgraph) => [subgraph, '42501'])));
  });
});

describe('an app role in its own schema', () => {
  it('cannot TRUNCATE, ALTER, DROP its tables or CREATE new ones', async () => {
    const outcomes = await asApp('iam', async (client) => ({
      truncate: await outcome(client, 'TRUNCATE iam.organizations'),
      alter: await outcome(client, 'ALTER TABLE iam.organizations ADD COLUMN x int'),
      drop: await outcome(client, 'DROP TABLE iam.organizations'),
      create: await outcome(client, 'CREATE TABLE iam.x (a int)'),
    }));
    expect(outcomes).toEqual({ truncate: '42501', alter: '42501', drop: '42501', create: '42501' });
    expect(await tablesOf('iam')).toContain('organizations');
    const columns = await admin.query(
      "SELECT 1 FROM pg_attribute WHERE attrelid = 'iam.organizations'::regclass AND attname = 'x' AND NOT attisdropped",
    );
    expect(columns.rowCount).toBe(0);
  });

  it('can INSERT and SELECT its own rows, with its schema on the search_path', async () => {
    const slug = `org-${Date.now()}`;
    const read = await asApp('iam', async (client) => {
      const inserted = await client.query<{ id: string }>(
        "INSERT INTO organizations (slug, name, billing_currency) VALUES ($1, 'Bootstrap Test Org', 'USD') RETURNING id",
        [slug],
      );
      const id = inserted.rows[0]?.id;
      return (await client.query('SELECT id, slug, name, billing_currency, status FROM iam.organizations WHERE id = $1', [id])).rows;
    });
    expect(read).toEqual([{ id: expect.any(String), slug, name: 'Bootstrap Test Org', billing_currency: 'USD', status: 'active' }]);
    const seen = await admin.query('SELECT 1 FROM iam.organizations WHERE slug = $1', [slug]);
    expect(seen.rowCount).toBe(1);
  });

  it('cannot read or write the migration history of its own schema', async () => {
    const { rows } = await admin.query<{ role: string; privileges: boolean[] }>(
      `SELECT r.role,
              ARRAY[has_table_privilege(r.role, r.tbl, 'SELECT'), has_table_privilege(r.role, r.tbl, 'INSERT'),
                    has_table_privilege(r.role, r.tbl, 'UPDATE'), has_table_privilege(r.role, r.tbl, 'DELETE')] AS privileges
         FROM unnest($1::text[], $2::text[]) AS r(role, tbl)`,
      [appRoles(), SUBGRAPHS.map((subgraph) => `${subgraph}._prisma_migrations`)],
    );
    expect(rows).toEqual(appRoles().map((role) => ({ role, privileges: [false, false, false, false] })));

    const outcomes: Record<string, string> = {};
    for (const subgraph of SUBGRAPHS) {
      outcomes[subgraph] = await asApp(subgraph, (client) => outcome(client, `SELECT * FROM ${quote(subgraph)}._prisma_migrations`));
    }
    expect(outcomes).toEqual(Object.fromEntries(SUBGRAPHS.map((subgraph) => [subgraph, '42501'])));
  });
});
