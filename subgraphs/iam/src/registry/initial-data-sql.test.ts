import { readFileSync } from 'node:fs';
import { loadRegistryData } from '@aifactory/contracts';
import { initialRegistrySql } from './initial-data-sql.js';

describe('migration 0004 (registry data)', () => {
  it('is exactly what the committed registry files say (run `npm run iam:registry-sql` after changing them in a new migration)', () => {
    const migration = readFileSync(new URL('../../prisma/migrations/0004_registry_data/migration.sql', import.meta.url), 'utf8');
    expect(migration).toBe(initialRegistrySql(loadRegistryData()));
  });

  it('quotes text so a description with an apostrophe stays one literal', () => {
    const data = { ...loadRegistryData(), products: [{ id: 'p', displayName: "O'Brien's", owner: 'o', lifecycle: 'active' as const }] };
    expect(initialRegistrySql(data)).toContain("('p', 'O''Brien''s', 'o', 'active')");
  });
});
