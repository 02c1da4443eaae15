import pg from 'pg';
import { quoteIdent, rolesOf, withDatabase, type SchemaRoles } from './layout.js';

export interface BootstrapOptions {
  adminUrl: string;
  database: string;
  rolePrefix: string;
  subgraphs: readonly string[];
}

/**
 * Creates the database and, per subgraph, a schema, an owner role and an app
 * role (ARCHITECTURE.md, Decisions: Database). Every statement is written to
 * leave things as they are when run again, so bootstrap is idempotent.
 */
export async function bootstrapDatabase(options: BootstrapOptions): Promise<void> {
  const roles = options.subgraphs.map((subgraph) => rolesOf(subgraph, options.rolePrefix));
  const server = new pg.Client({ connectionString: withDatabase(options.adminUrl, 'postgres') });
  await server.connect();
  try {
    const exists = await server.query('SELECT 1 FROM pg_database WHERE datname = $1', [options.database]);
    if (exists.rowCount === 0) await server.query(`CREATE DATABASE ${quoteIdent(options.database)}`);
    for (const role of roles) {
      await ensureRole(server, role.owner, false);
      await ensureRole(server, role.app, true);
    }
  } finally {
    await server.end();
  }

  const db = new pg.Client({ connectionString: withDatabase(options.adminUrl, options.database) });
  await db.connect();
  try {
    const database = quoteIdent(options.database);
    await db.query(`REVOKE ALL ON DATABASE ${database} FROM PUBLIC`);
    await db.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    const { rows } = await db.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
    const migratorIsSuperuser = rows[0]?.rolsuper === true;
    for (const role of roles) {
      await db.query(`GRANT CONNECT ON DATABASE ${database} TO ${quoteIdent(role.app)}`);
      // A migrator that is not a superuser runs migrations through SET ROLE, which needs membership.
      if (!migratorIsSuperuser) await db.query(`GRANT ${quoteIdent(role.owner)} TO CURRENT_USER`);
      await ensureSchema(db, role);
    }
  } finally {
    await db.end();
  }
}

async function ensureRole(client: pg.Client, name: string, login: boolean): Promise<void> {
  const found = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
  const attributes = `${login ? 'LOGIN' : 'NOLOGIN'} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION NOINHERIT`;
  if (found.rowCount === 0) {
    try {
      await client.query(`CREATE ROLE ${quoteIdent(name)} ${attributes}`);
      return;
    } catch (error) {
      // Another bootstrap created it between our check and our CREATE: fall through and align it.
      if ((error as { code?: string }).code !== '42710') throw error;
    }
  }
  await client.query(`ALTER ROLE ${quoteIdent(name)} ${attributes}`);
}

async function ensureSchema(db: pg.Client, role: SchemaRoles): Promise<void> {
  const schema = quoteIdent(role.schema);
  const owner = quoteIdent(role.owner);
  const app = quoteIdent(role.app);
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION ${owner}`);
  await db.query(`ALTER SCHEMA ${schema} OWNER TO ${owner}`);
  await db.query(`REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC`);
  await db.query(`GRANT USAGE ON SCHEMA ${schema} TO ${app}`);
  // The app role gets data access only: no TRUNCATE, no REFERENCES, no TRIGGER, and it owns nothing, so no DDL.
  await db.query(
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ${schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${app}`,
  );
  await db.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ${schema} GRANT USAGE, SELECT ON SEQUENCES TO ${app}`);
  await db.query(`ALTER ROLE ${app} IN DATABASE ${quoteIdent(db.database ?? '')} SET search_path = ${schema}`);
}

/** Drops a database and the roles bootstrap made for it (tests clean up with this). */
export async function dropDatabase(options: BootstrapOptions): Promise<void> {
  const server = new pg.Client({ connectionString: withDatabase(options.adminUrl, 'postgres') });
  await server.connect();
  try {
    await server.query(`DROP DATABASE IF EXISTS ${quoteIdent(options.database)} WITH (FORCE)`);
    for (const subgraph of options.subgraphs) {
      const role = rolesOf(subgraph, options.rolePrefix);
      await server.query(`DROP ROLE IF EXISTS ${quoteIdent(role.app)}`);
      await server.query(`DROP ROLE IF EXISTS ${quoteIdent(role.owner)}`);
    }
  } finally {
    await server.end();
  }
}
