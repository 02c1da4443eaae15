import { ManualClock } from '@aifactory/clock';
import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { captureLogs } from '@aifactory/testing';
import { apiKey, grantAt, IDS, quietLogger, recordingSink, RESOURCES, user } from '../test/fixtures.js';
import { DenyAuditor, type DenyInput } from './deny-audit.js';
import { denyEventId } from './deny-event.js';

const START = Date.parse('2026-01-01T10:05:10.000Z');
const alice = user([grantAt.project('viewer', 'PB')]);

function deny(extra: Partial<DenyInput> = {}): DenyInput {
  return {
    principal: alice,
    scope: 'gpuaas:allocation:create',
    resource: RESOURCES.PA,
    resourceId: null,
    correlationId: 'corr-1',
    reason: 'resource_not_covered',
    ...extra,
  };
}

function auditor(options: { maxEntries?: number } = {}) {
  const sink = recordingSink();
  const clock = new ManualClock(START);
  const metrics = new ServiceMetrics('authz-test');
  const denies = new DenyAuditor({ publisher: 'gpuaas', sink, clock, logger: quietLogger(), metrics, ...options });
  return { sink, clock, metrics, denies };
}

async function counter(metrics: ServiceMetrics, name: string): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  const values = metric ? (await metric.get()).values : [];
  return values.reduce((sum, sample) => sum + sample.value, 0);
}

describe('DenyAuditor', () => {
  it('writes 1,000 identical denies within a minute once, and counts all of them', async () => {
    const { sink, clock, metrics, denies } = auditor();

    for (let i = 0; i < 1_000; i += 1) {
      denies.record(deny());
      clock.advance(40);
    }
    await denies.flush();

    expect(sink.written).toHaveLength(1);
    expect(await counter(metrics, 'aif_authz_denies_total')).toBe(1_000);
  });

  it('writes the audit record of the plan with the deterministic id', async () => {
    const { sink, denies } = auditor();

    denies.record(deny({ resourceId: 'core42:aicloud:uae-north:o:p:allocation:a1', registryVersions: { scopes: 7 } }));
    await denies.flush();

    expect(sink.written).toEqual([
      {
        id: denyEventId(
          `user:${alice.subject}`,
          'gpuaas:allocation:create',
          'core42:aicloud:uae-north:o:p:allocation:a1',
          '2026-01-01T10:05:00.000Z',
        ),
        occurredAt: new Date(START),
        publisher: 'gpuaas',
        actor: { type: 'user', id: alice.subject },
        organizationId: IDS.O1,
        departmentId: IDS.DA,
        projectId: IDS.PA,
        correlationId: 'corr-1',
        registryVersions: { scopes: 7 },
        record: {
          action: 'gpuaas.access.deny',
          actionVersion: 1,
          outcome: 'denied',
          privileged: false,
          retentionClass: 'extended',
          principal: { type: 'user', id: alice.subject },
          scope: 'gpuaas:allocation:create',
          resource: 'core42:aicloud:uae-north:o:p:allocation:a1',
          correlationId: 'corr-1',
          reason: 'resource_not_covered',
          details: {},
        },
      },
    ]);
  });

  it('writes each distinct principal, scope and resource once', async () => {
    const { sink, denies } = auditor();

    denies.record(deny());
    denies.record(deny({ resource: RESOURCES.PA2 }));
    denies.record(deny({ scope: 'gpuaas:allocation:read' }));
    denies.record(deny({ principal: { ...alice, subject: 'https://idp.test|bob' } }));
    denies.record(deny({ principal: apiKey(IDS.PB, []) }));
    denies.record(deny({ resource: null }));
    denies.record(deny());
    await denies.flush();

    expect(sink.written).toHaveLength(6);
    expect(new Set(sink.written.map((written) => written.id)).size).toBe(6);
    expect(sink.written[4]?.record.details).toEqual({ apiKeyId: 'key-1' });
  });

  it('writes again in the next minute, under a new id', async () => {
    const { sink, clock, denies } = auditor();

    denies.record(deny());
    clock.advance(50_000);
    denies.record(deny());
    await denies.flush();

    expect(sink.written).toHaveLength(2);
    expect(sink.written[0]?.id).not.toBe(sink.written[1]?.id);
  });

  it('forgets the oldest deny past its bound, which may then be written again', async () => {
    const { sink, denies } = auditor({ maxEntries: 2 });

    denies.record(deny({ scope: 'a:b:one' }));
    denies.record(deny({ scope: 'a:b:two' }));
    denies.record(deny({ scope: 'a:b:three' }));
    denies.record(deny({ scope: 'a:b:two' }));
    denies.record(deny({ scope: 'a:b:one' }));
    await denies.flush();

    expect(sink.written.map((written) => written.record.scope)).toEqual(['a:b:one', 'a:b:two', 'a:b:three', 'a:b:one']);
    // The repeat carries the first write's id, so downstream dedupes it.
    expect(sink.written[3]?.id).toBe(sink.written[0]?.id);
  });

  it('never throws on a failed write: it logs, counts, and tries again on the next identical deny', async () => {
    const logs = captureLogs();
    const sink = recordingSink();
    const metrics = new ServiceMetrics('authz-test');
    const denies = new DenyAuditor({
      publisher: 'gpuaas',
      sink,
      clock: new ManualClock(START),
      logger: createLogger({ service: 'authz-test', destination: logs.destination }),
      metrics,
    });
    sink.fail = new Error('outbox unavailable');

    expect(() => denies.record(deny())).not.toThrow();
    await denies.flush();
    sink.fail = undefined;
    denies.record(deny());
    await denies.flush();

    expect(sink.written).toHaveLength(1);
    expect(await counter(metrics, 'aif_authz_deny_audit_failures_total')).toBe(1);
    expect(logs.lines()).toEqual([expect.objectContaining({ level: 'warn', msg: 'deny audit write failed', scope: 'gpuaas:allocation:create' })]);
  });

  it('survives a sink that throws synchronously', async () => {
    const denies = new DenyAuditor({
      publisher: 'gpuaas',
      sink: {
        write: () => {
          throw new Error('boom');
        },
      },
      logger: quietLogger(),
    });

    expect(() => denies.record(deny())).not.toThrow();
    await denies.flush();
  });

  it('refuses a publisher whose deny action is not registered', () => {
    expect(() => new DenyAuditor({ publisher: 'nobody' as 'gpuaas', sink: recordingSink(), logger: quietLogger() })).toThrow(
      /nobody\.access\.deny is not registered/,
    );
  });
});
