import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Every subgraph that owns a Postgres schema, in the order migrations run. */
export const SUBGRAPHS = ['iam', 'billing', 'evidence', 'gpuaas', 'appplatform', 'tokenfactory'] as const;
export type SubgraphName = (typeof SUBGRAPHS)[number];

/** The repository root, found from this file whether it runs from src/ (tests) or dist/. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function migrationsDirOf(subgraph: string, root = REPO_ROOT): string {
  return path.join(root, 'subgraphs', subgraph, 'prisma', 'migrations');
}

export function prismaSchemaFileOf(subgraph: string, root = REPO_ROOT): string {
  return path.join(root, 'subgraphs', subgraph, 'prisma', 'schema.prisma');
}

export interface SchemaRoles {
  schema: string;
  owner: string;
  app: string;
}

/**
 * Role names are cluster-wide in Postgres, so every database gets its own
 * prefix (tests use a random one) and two databases never share a role.
 */
export function rolesOf(subgraph: string, rolePrefix: string): SchemaRoles {
  return { schema: subgraph, owner: `${rolePrefix}${subgraph}_owner`, app: `${rolePrefix}${subgraph}_app` };
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A URL to the same server with another database name. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
