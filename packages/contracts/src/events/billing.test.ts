import { randomUUID } from 'node:crypto';
import { balanceDepletedV1, balanceLowWarningV1 } from './billing.js';
import { findEventDefinition, parseEvent } from './registry.js';

const alert = {
  organizationId: randomUUID(),
  currency: 'EUR',
  balance: '-250',
  threshold: '1000',
  announcedAt: '2030-01-01T00:00:00.000Z',
};

describe('the balance alert events', () => {
  it('are registered as state events of the organization balance, on platform.billing subjects', () => {
    for (const definition of [balanceLowWarningV1, balanceDepletedV1]) {
      expect(findEventDefinition(definition.type, 1)).toBe(definition);
      expect(definition).toMatchObject({ kind: 'state', aggregateType: 'organization_balance' });
      expect(definition.subject.startsWith('platform.billing.balance.')).toBe(true);
    }
  });

  it('carry amounts as integer strings, a balance below zero included', () => {
    expect(parseEvent({ type: balanceLowWarningV1.type, version: 1, payload: { ...alert, reason: 'still_low' } })).toMatchObject({ ok: true });
    expect(parseEvent({ type: balanceLowWarningV1.type, version: 1, payload: { ...alert, balance: -250, reason: 'crossed' } })).toMatchObject({
      ok: false,
      issues: [expect.stringMatching(/^balance:/)],
    });
    expect(parseEvent({ type: balanceLowWarningV1.type, version: 1, payload: { ...alert, threshold: '10.5', reason: 'crossed' } })).toMatchObject({
      ok: false,
      issues: [expect.stringMatching(/^threshold:/)],
    });
  });

  it('announce depletion only as a crossing', () => {
    expect(parseEvent({ type: balanceDepletedV1.type, version: 1, payload: { ...alert, reason: 'crossed' } })).toMatchObject({ ok: true });
    expect(parseEvent({ type: balanceDepletedV1.type, version: 1, payload: { ...alert, reason: 'still_low' } })).toMatchObject({
      ok: false,
      reason: 'invalid_payload',
    });
  });
});
