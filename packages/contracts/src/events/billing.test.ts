import { randomUUID } from 'node:crypto';
import { balanceCreditedV1, balanceDepletedV1, balanceLowWarningV1 } from './billing.js';
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

describe('the balance credited event', () => {
  const credited = {
    organizationId: randomUUID(),
    paymentSessionId: randomUUID(),
    postingId: 'payment:x',
    amount: '5000',
    currency: 'EUR',
    balance: { paid: '4500' },
  };

  it('is a state event of its payment session, on a platform.billing subject', () => {
    expect(findEventDefinition('platform.billing.balance.credited', 1)).toBe(balanceCreditedV1);
    expect(balanceCreditedV1).toMatchObject({ kind: 'state', aggregateType: 'payment_session', subject: 'platform.billing.balance.credited' });
  });

  it('carries a positive amount and the paid balance, below zero included, as integer strings', () => {
    expect(parseEvent({ type: balanceCreditedV1.type, version: 1, payload: credited })).toMatchObject({ ok: true });
    expect(parseEvent({ type: balanceCreditedV1.type, version: 1, payload: { ...credited, balance: { paid: '-200' } } })).toMatchObject({ ok: true });
    for (const amount of ['0', '-5000', '50.00', 5000]) {
      expect(parseEvent({ type: balanceCreditedV1.type, version: 1, payload: { ...credited, amount } })).toMatchObject({
        ok: false,
        issues: [expect.stringMatching(/^amount:/)],
      });
    }
    expect(parseEvent({ type: balanceCreditedV1.type, version: 1, payload: { ...credited, balance: '4500' } })).toMatchObject({
      ok: false,
      issues: [expect.stringMatching(/^balance:/)],
    });
  });
});
