import { deniedAccessEnvelope, type DeniedAccess, type DenySink } from '@aifactory/authz';
import { ManualClock } from '@aifactory/clock';
import { auditRecordSchema } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';
import { attributingDenyAuditor } from './access-control.js';

function recordingSink(): DenySink & { written: DeniedAccess[] } {
  const written: DeniedAccess[] = [];
  return { written, write: async (denied) => void written.push(denied) };
}

const resource = { organizationId: '00000000-0000-4000-8000-000000000001' };

describe('deny auditing of service callers', () => {
  it('names the party a service acted for and the act chain, in a record the audit contract accepts', async () => {
    const sink = recordingSink();
    const denies = attributingDenyAuditor({ publisher: 'billing', sink, logger: createLogger({ service: 'billing', level: 'silent' }), clock: new ManualClock() });
    const service: Principal = {
      type: 'service',
      subject: 'tokenfactory',
      platformRoles: [],
      grants: [],
      scopes: ['platform:billing:read'],
      onBehalfOf: { type: 'user', subject: 'https://idp.test|alice' },
      actorChain: ['tokenfactory', 'gpuaas'],
    };
    denies.record({ principal: service, scope: 'platform:billing:manage', resource, resourceId: null, correlationId: 'corr-0001', reason: 'scope_not_held' });
    await denies.flush();
    const record = sink.written[0]!.record;
    expect(record).toMatchObject({
      principal: { type: 'service', id: 'tokenfactory' },
      onBehalfOf: { type: 'user', id: 'https://idp.test|alice' },
      actorChain: ['tokenfactory', 'gpuaas'],
    });
    expect(deniedAccessEnvelope(sink.written[0]!).payload).toEqual(record);
    expect(auditRecordSchema.parse(record)).toEqual(record);
  });

  it('leaves the records of users, API keys and services acting for themselves as they were', async () => {
    const sink = recordingSink();
    const denies = attributingDenyAuditor({ publisher: 'billing', sink, logger: createLogger({ service: 'billing', level: 'silent' }), clock: new ManualClock() });
    const user: Principal = { type: 'user', subject: 'alice', platformRoles: [], grants: [] };
    const ownBehalf: Principal = { type: 'service', subject: 'tokenfactory', platformRoles: [], grants: [], scopes: [] };
    for (const principal of [user, ownBehalf]) {
      denies.record({ principal, scope: 'platform:billing:manage', resource, resourceId: null, correlationId: 'corr-0001', reason: 'scope_not_held' });
    }
    await denies.flush();
    expect(sink.written).toHaveLength(2);
    for (const { record } of sink.written) {
      expect(record).not.toHaveProperty('onBehalfOf');
      expect(record).not.toHaveProperty('actorChain');
    }
  });
});
