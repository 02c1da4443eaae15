import { randomUUID } from 'node:crypto';
import { eventEnvelopeSchema, parseEvent } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import { UsageEvents, type IntervalUsage, type UsageScope } from './usage-events.js';

const scope: UsageScope = {
  organizationId: randomUUID(),
  departmentId: randomUUID(),
  projectId: randomUUID(),
  actor: { type: 'service_account', id: 'sa-1' },
  correlationId: 'corr-usage-1',
};
const gpuaas = new UsageEvents('gpuaas');
const interval: IntervalUsage = {
  usageId: randomUUID(),
  resourceType: 'gpu_allocation',
  resourceId: 'alloc-1',
  unit: 'gpu_hour',
  unitVersion: 1,
  openedAt: new Date('2026-11-24T10:00:00.000Z'),
};

function codeOf(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    return error instanceof AppError ? error.code : `not an AppError: ${String(error)}`;
  }
  return 'accepted';
}

describe('usage events', () => {
  it('builds an interval as versions 1 and 2 of one aggregate, in the contract, with the scope in the envelope', () => {
    const opened = gpuaas.opened(scope, interval);
    const closed = gpuaas.closed(scope, interval, new Date('2026-11-24T12:30:00.000Z'));
    expect(opened).toMatchObject({
      type: 'gpuaas.usage.opened',
      aggregateId: interval.usageId,
      aggregateVersion: 1,
      organizationId: scope.organizationId,
      departmentId: scope.departmentId,
      projectId: scope.projectId,
      actor: scope.actor,
      correlationId: 'corr-usage-1',
      occurredAt: interval.openedAt,
      payload: { usageId: interval.usageId, unit: 'gpu_hour', unitVersion: 1, openedAt: '2026-11-24T10:00:00.000Z' },
    });
    expect(closed).toMatchObject({ type: 'gpuaas.usage.closed', aggregateId: interval.usageId, aggregateVersion: 2, payload: { closedAt: '2026-11-24T12:30:00.000Z' } });
    for (const event of [opened, closed]) expect(parseEvent({ type: event.type, version: event.version, payload: event.payload as Record<string, unknown> }).ok).toBe(true);
    expect(eventEnvelopeSchema.shape.id.safeParse(opened.id).success).toBe(true);
    expect(opened.id).not.toBe(closed.id);
  });

  it('carries what an interval accrues per second and the API key the usage was made with', () => {
    const opened = gpuaas.opened({ ...scope, apiKeyId: 'key-1' }, { ...interval, quantityPerSecond: 8n });
    expect(opened.payload).toMatchObject({ quantityPerSecond: '8', apiKeyId: 'key-1' });
    expect(gpuaas.opened(scope, interval).payload).toMatchObject({ quantityPerSecond: '1' });
    expect(Object.keys(gpuaas.opened(scope, interval).payload as object)).not.toContain('apiKeyId');
    expect(codeOf(() => gpuaas.opened(scope, { ...interval, quantityPerSecond: 0n }))).toBe('BAD_REQUEST_INVALID_INPUT');
  });

  it('gives the same usage the same event id every time, and other usage another', () => {
    expect(gpuaas.opened(scope, interval).id).toBe(gpuaas.opened(scope, interval).id);
    expect(gpuaas.opened(scope, { ...interval, usageId: randomUUID() }).id).not.toBe(gpuaas.opened(scope, interval).id);
    expect(new UsageEvents('appplatform').opened(scope, interval).id).not.toBe(gpuaas.opened(scope, interval).id);
  });

  it('carries point usage as a quantity in base units, as a string, never a price', () => {
    const recorded = new UsageEvents('tokenfactory').recorded(scope, {
      usageId: randomUUID(),
      resourceType: 'model',
      resourceId: 'llama-3-70b',
      unit: 'token_output',
      unitVersion: 1,
      quantity: 9_007_199_254_740_993n,
      occurredAt: new Date('2026-11-24T10:00:01.250Z'),
    });
    expect(recorded).toMatchObject({ type: 'tokenfactory.usage.recorded', aggregateVersion: 1, payload: { quantity: '9007199254740993' } });
    expect(Object.keys(recorded.payload as object)).not.toContain('price');
  });

  it('numbers a window summary by its recount, so a recount supersedes the earlier count', () => {
    const summary = { unit: 'gpu_hour', unitVersion: 1, windowStart: new Date('2026-11-24T10:00:00Z'), windowEnd: new Date('2026-11-24T11:00:00Z'), eventCount: 12, quantity: 43_200n };
    const first = gpuaas.windowSummary(scope, { ...summary, recount: 1 });
    const recount = gpuaas.windowSummary(scope, { ...summary, eventCount: 13, recount: 2 });
    expect(first.aggregateId).toBe(recount.aggregateId);
    expect([first.aggregateVersion, recount.aggregateVersion]).toEqual([1, 2]);
    expect(recount.payload).toMatchObject({ eventCount: 13, quantity: '43200', windowEnd: '2026-11-24T11:00:00.000Z' });
  });

  it('refuses what the contract or the arithmetic does not allow', () => {
    const point = { usageId: randomUUID(), resourceType: 'model', resourceId: 'm', unit: 'request', unitVersion: 1, occurredAt: new Date() };
    const tokenfactory = new UsageEvents('tokenfactory');
    expect(codeOf(() => tokenfactory.recorded(scope, { ...point, quantity: 0n }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(codeOf(() => tokenfactory.recorded(scope, { ...point, quantity: 1n, unit: 'Not A Unit' }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(codeOf(() => tokenfactory.recorded(scope, { ...point, quantity: 1n, unitVersion: 0 }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(codeOf(() => tokenfactory.recorded(scope, { ...point, quantity: 1n, usageId: 'not-a-uuid' }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(codeOf(() => tokenfactory.recorded({ ...scope, projectId: 'p' }, { ...point, quantity: 1n }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(codeOf(() => tokenfactory.recorded(scope, { ...point, quantity: 1n, occurredAt: new Date('nope') }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(codeOf(() => gpuaas.closed(scope, interval, new Date(interval.openedAt.getTime() - 1)))).toBe('BAD_REQUEST_INVALID_INPUT');
    const window = { unit: 'gpu_hour', unitVersion: 1, windowStart: new Date('2026-11-24T10:00:00Z'), windowEnd: new Date('2026-11-24T10:00:00Z'), eventCount: 1, quantity: 1n, recount: 1 };
    expect(codeOf(() => gpuaas.windowSummary(scope, window))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(codeOf(() => gpuaas.windowSummary(scope, { ...window, windowEnd: new Date('2026-11-24T11:00:00Z'), recount: 0 }))).toBe('BAD_REQUEST_INVALID_INPUT');
  });
});
