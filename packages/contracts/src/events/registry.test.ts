import { randomUUID } from 'node:crypto';
import { SUBJECT_PATTERN } from '../subjects.js';
import { EVENT_DEFINITIONS, findEventDefinition, parseEvent } from './registry.js';

const organization = { id: randomUUID(), slug: 'acme', name: 'Acme', billingCurrency: 'EUR', status: 'active' };

describe('the event registry', () => {
  it('holds each type and version once, published on its own subject', () => {
    const keys = EVENT_DEFINITIONS.map((definition) => `${definition.type}@${definition.version}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const definition of EVENT_DEFINITIONS) {
      expect(definition.subject).toMatch(SUBJECT_PATTERN);
      expect(definition.subject).toBe(definition.type);
    }
  });

  it('includes the organization events and the usage and status shells', () => {
    expect(findEventDefinition('platform.iam.organization.updated', 1)).toMatchObject({ kind: 'state', aggregateType: 'organization' });
    expect(findEventDefinition('platform.iam.organization.created', 1)).toMatchObject({ kind: 'state' });
    expect(findEventDefinition('gpuaas.usage.opened', 1)).toMatchObject({ kind: 'sequenced', aggregateType: 'usage_interval' });
    expect(findEventDefinition('gpuaas.usage.closed', 1)).toMatchObject({ kind: 'sequenced', aggregateType: 'usage_interval' });
    expect(findEventDefinition('tokenfactory.usage.recorded', 1)).toMatchObject({ kind: 'sequenced' });
    expect(findEventDefinition('appplatform.usage.window_summary', 1)).toMatchObject({ kind: 'state' });
    expect(findEventDefinition('platform.status.billing.changed', 1)).toMatchObject({ kind: 'state' });
  });
});

describe('parseEvent', () => {
  it("returns the contract and the validated payload", () => {
    const parsed = parseEvent({ type: 'platform.iam.organization.updated', version: 1, payload: { ...organization, extra: 1 } });
    expect(parsed).toEqual({ ok: true, definition: findEventDefinition('platform.iam.organization.updated', 1), payload: organization });
  });

  it('names an unregistered type', () => {
    expect(parseEvent({ type: 'platform.iam.organization.renamed', version: 1, payload: organization })).toEqual({
      ok: false,
      reason: 'unknown_type',
      issues: [],
    });
  });

  it('names a version of a known type it does not know', () => {
    expect(parseEvent({ type: 'platform.iam.organization.updated', version: 2, payload: organization })).toMatchObject({
      ok: false,
      reason: 'unknown_version',
    });
  });

  it('names a payload that breaks the contract, with the offending fields', () => {
    const parsed = parseEvent({ type: 'platform.iam.organization.updated', version: 1, payload: { ...organization, billingCurrency: 'euro' } });
    expect(parsed).toMatchObject({ ok: false, reason: 'invalid_payload', issues: [expect.stringMatching(/^billingCurrency:/)] });
  });

  it('refuses usage quantities that are not integer strings', () => {
    const payload = {
      usageId: randomUUID(),
      resourceType: 'model',
      resourceId: 'llama-70b',
      unit: 'token_input',
      unitVersion: 1,
      quantity: 12.5,
      occurredAt: new Date().toISOString(),
    };
    expect(parseEvent({ type: 'tokenfactory.usage.recorded', version: 1, payload })).toMatchObject({ reason: 'invalid_payload' });
    expect(parseEvent({ type: 'tokenfactory.usage.recorded', version: 1, payload: { ...payload, quantity: '125' } })).toMatchObject({ ok: true });
  });
});
