import pg from 'pg';

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * The pepper versions stored API-key hashes use, read through iam's own
 * database role (plan: the rotate command asks `iam.api_keys`, nothing else).
 * Revoked keys count too: their hashes still answer "revoked" rather than
 * "unknown" while they are kept.
 */
export async function usedPepperVersions(databaseUrl: string, schema = 'iam'): Promise<number[]> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'secrets-rotate' });
  await client.connect();
  try {
    const { rows } = await client.query<{ pepper_version: number }>(`SELECT DISTINCT pepper_version FROM ${quoteIdent(schema)}.api_keys`);
    return rows.map((row) => Number(row.pepper_version)).sort((a, b) => a - b);
  } finally {
    await client.end();
  }
}

/** A database URL safe to print: user, host and database, never the password. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.username || '(default user)'}@${parsed.host}${parsed.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}
