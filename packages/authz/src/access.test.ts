import { AppError } from '@aifactory/errors';
import { accessFor, grantAt, RESOURCES, recordingSink, user } from '../test/fixtures.js';

const member = user([grantAt.project('project_member', 'PA')]);

describe('Access', () => {
  it('allows a covered resource and records nothing', async () => {
    const sink = recordingSink();
    const { access, auditor } = accessFor(member, { sink });

    expect(access.can('gpuaas:allocation:create', RESOURCES.PA)).toBe(true);
    access.require('gpuaas:allocation:create', RESOURCES.PA);
    access.requireHolds('gpuaas:allocation:create');
    await auditor.flush();

    expect(sink.written).toEqual([]);
  });

  it('records a deny with the resource, its canonical id and the reason', async () => {
    const sink = recordingSink();
    const { access, auditor } = accessFor(member, { sink });

    expect(access.can('gpuaas:allocation:create', RESOURCES.PB, 'core42:aicloud:uae-north:o:p:allocation:a1')).toBe(false);
    await auditor.flush();

    expect(sink.written).toEqual([
      expect.objectContaining({
        correlationId: 'corr-test-1',
        projectId: RESOURCES.PB.projectId,
        registryVersions: { scopes: 7, roles: 3 },
        record: expect.objectContaining({
          scope: 'gpuaas:allocation:create',
          resource: 'core42:aicloud:uae-north:o:p:allocation:a1',
          reason: 'resource_not_covered',
        }),
      }),
    ]);
  });

  it('refuses with AUTH_FORBIDDEN naming the scope, after recording the deny', async () => {
    const sink = recordingSink();
    const { access, auditor } = accessFor(member, { sink });

    expect(() => access.require('platform:member:manage', RESOURCES.PA)).toThrow(
      expect.objectContaining({ code: 'AUTH_FORBIDDEN', message: 'Missing permission platform:member:manage' }),
    );
    await auditor.flush();

    expect(sink.written.map((written) => written.record.reason)).toEqual(['scope_not_held']);
  });

  it('refuses a coarse check and records it without a resource', async () => {
    const sink = recordingSink();
    const { access, auditor } = accessFor(member, { sink });

    expect(() => access.requireHolds('platform:plan:manage')).toThrow(AppError);
    await auditor.flush();

    expect(sink.written).toEqual([expect.objectContaining({ organizationId: null, projectId: null, record: expect.objectContaining({ resource: null }) })]);
  });

  it('answers holds without recording a deny', async () => {
    const sink = recordingSink();
    const { access, auditor } = accessFor(member, { sink });

    expect(access.holds('gpuaas:allocation:create')).toBe(true);
    expect(access.holds('platform:plan:manage')).toBe(false);
    await auditor.flush();

    expect(sink.written).toEqual([]);
  });

  it('flags a deprecated scope once per request, allowed or not', () => {
    const flagged: string[] = [];
    const { access } = accessFor(member, { onDeprecated: (scope) => flagged.push(scope) });

    expect(access.can('gpuaas:node:list', RESOURCES.PA)).toBe(true);
    expect(access.can('gpuaas:node:list', RESOURCES.PB)).toBe(false);
    expect(access.holds('gpuaas:node:list')).toBe(true);

    expect(flagged).toEqual(['gpuaas:node:list']);
  });

  it('refuses a retired scope with AUTH_SCOPE_RETIRED and audits it', async () => {
    const sink = recordingSink();
    const { access, auditor } = accessFor(member, { sink });

    expect(() => access.can('gpuaas:node:reboot', RESOURCES.PA)).toThrow(expect.objectContaining({ code: 'AUTH_SCOPE_RETIRED' }));
    await auditor.flush();

    expect(sink.written.map((written) => written.record.reason)).toEqual(['scope_retired']);
  });

  it('throws AUTH_SCOPE_UNREGISTERED for a scope nobody registered, without auditing a deny', async () => {
    const sink = recordingSink();
    const { access, auditor } = accessFor(member, { sink });

    expect(() => access.require('gpuaas:allocation:steal', RESOURCES.PA)).toThrow(expect.objectContaining({ code: 'AUTH_SCOPE_UNREGISTERED' }));
    await auditor.flush();

    expect(sink.written).toEqual([]);
  });
});
