import { migrationsDirOf, rolesOf, SUBGRAPHS, withDatabase } from './layout.js';
import type { MigrationTarget } from './migrations.js';

export interface DatabaseLayout {
  adminUrl: string;
  database: string;
  rolePrefix: string;
}

export function migrationTargets(layout: DatabaseLayout, subgraphs: readonly string[] = SUBGRAPHS, root?: string): MigrationTarget[] {
  return subgraphs.map((subgraph) => ({ ...rolesOf(subgraph, layout.rolePrefix), migrationsDir: migrationsDirOf(subgraph, root) }));
}

/** The URL a subgraph's app role logs in with. */
export function appDatabaseUrl(layout: DatabaseLayout, subgraph: string): string {
  const url = new URL(withDatabase(layout.adminUrl, layout.database));
  url.username = rolesOf(subgraph, layout.rolePrefix).app;
  url.password = '';
  return url.toString();
}
