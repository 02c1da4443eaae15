import { readFileSync } from 'node:fs';
import { loadRegistryData } from '@aifactory/contracts';
import { initialRegistrySql, laterRegistrySql, REGISTRY_MIGRATIONS, registryMigrationSql } from './initial-data-sql.js';

const migrationText = (folder: string) => readFileSync(new URL(`../../prisma/migrations/${folder}/migration.sql`, import.meta.url), 'utf8');

describe('the registry migrations', () => {
  it.each(REGISTRY_MIGRATIONS.map((migration) => [migration.folder, migration.since]))(
    '%s is exactly what the committed registry files say (run `npm run iam:registry-sql` after marking new rows "since")',
    (folder, since) => {
      expect(migrationText(folder)).toBe(registryMigrationSql(loadRegistryData(), since));
    },
  );

  it('has a migration for every "since" a registry row names', () => {
    const data = loadRegistryData();
    const named = new Set(
      [...data.products, ...data.scopes, ...data.resourceTypes, ...data.auditActions, ...data.roles, ...data.policyKeys, ...data.serviceIdentities]
        .map((row) => row.since)
        .filter((since) => since !== undefined),
    );
    const migrated = new Set(REGISTRY_MIGRATIONS.map((migration) => migration.since));
    for (const since of named) expect(migrated.has(since)).toBe(true);
  });

  it('keeps 0004 to the unmarked rows, and puts a marked row only into its own migration', () => {
    const data = loadRegistryData();
    expect(initialRegistrySql(data)).not.toContain('platform:service_identity:manage');
    const later = laterRegistrySql(data, 7);
    expect(later).toContain("'platform:service_identity:manage'");
    expect(later).toContain("'platform.api_keys.max_rotation_grace', 'duration', NULL, '\"P7D\"'::JSONB, 'ceiling'");
    expect(later).toContain(`UPDATE "registry_versions" SET "version" = "version" + 1 WHERE "name" IN ('scopes', 'audit_actions', 'policy_keys', 'policy');`);
    expect(later).toContain(`INSERT INTO "service_identities"`);
    expect(later).not.toContain("'platform:api_key:manage'");
  });

  it('quotes text so a description with an apostrophe stays one literal', () => {
    const data = { ...loadRegistryData(), products: [{ id: 'p', displayName: "O'Brien's", owner: 'o', lifecycle: 'active' as const }] };
    expect(initialRegistrySql(data)).toContain("('p', 'O''Brien''s', 'o', 'active')");
  });
});
