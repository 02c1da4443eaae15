import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { captureLogs } from '@aifactory/testing';
import { accessFor, grantAt, RESOURCES, user } from '../test/fixtures.js';
import { deprecatedScopeReporter } from './deprecated-scopes.js';

describe('deprecatedScopeReporter', () => {
  it('counts and logs each request that uses a deprecated scope', async () => {
    const logs = captureLogs();
    const metrics = new ServiceMetrics('authz-test');
    const onDeprecated = deprecatedScopeReporter({ logger: createLogger({ service: 'authz-test', destination: logs.destination }), metrics });
    const viewer = user([grantAt.project('viewer', 'PA')]);

    for (let request = 0; request < 2; request += 1) {
      const { access } = accessFor(viewer, { onDeprecated });
      access.can('gpuaas:node:list', RESOURCES.PA);
      access.can('gpuaas:node:list', RESOURCES.PA);
    }

    const { values } = await metrics.registry.getSingleMetric('aif_authz_deprecated_scope_uses_total')!.get();
    expect(values).toEqual([expect.objectContaining({ labels: { scope: 'gpuaas:node:list' }, value: 2 })]);
    expect(logs.lines()).toEqual([
      expect.objectContaining({ level: 'warn', msg: 'deprecated scope used', scope: 'gpuaas:node:list' }),
      expect.objectContaining({ level: 'warn', msg: 'deprecated scope used', scope: 'gpuaas:node:list' }),
    ]);
  });
});
