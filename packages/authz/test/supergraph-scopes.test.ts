import { readFileSync } from 'node:fs';
import { loadRegistryData } from '@aifactory/contracts';
import { unregisteredScopes } from '../src/supergraph-scopes.js';

/**
 * The CI check of issue 14: every scope a subgraph names in `@scopes` is in
 * the scope registry, or nobody could ever be granted the field.
 */
describe('the committed supergraph', () => {
  it('uses only registered scopes in @scopes', () => {
    const supergraph = readFileSync(new URL('../../../supergraph.graphql', import.meta.url), 'utf8');
    const registered = new Set(loadRegistryData().scopes.map((scope) => scope.id));

    expect(unregisteredScopes(supergraph, (scope) => registered.has(scope))).toEqual([]);
  });
});
