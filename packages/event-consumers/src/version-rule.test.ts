import { aggregateKey, planVersions, type EventKind, type VersionedEvent } from './version-rule.js';

const event = (kind: EventKind, aggregateVersion: number, aggregateId = 'a-1'): VersionedEvent => ({
  kind,
  aggregateType: 'allocation',
  aggregateId,
  aggregateVersion,
});

const applied = (entries: Array<[string, number]>) => new Map(entries.map(([id, v]) => [aggregateKey('allocation', id), v]));

describe('planVersions', () => {
  it('drops a state event older than or equal to the applied version', () => {
    const plan = planVersions([event('state', 4), event('state', 5), event('state', 6)], applied([['a-1', 5]]));

    expect(plan.decisions).toEqual(['skip', 'skip', 'apply']);
    expect(plan.versions.get(aggregateKey('allocation', 'a-1'))).toBe(6);
  });

  it('applies newer state events over a gap, oldest first', () => {
    const plan = planVersions([event('state', 9), event('state', 3)], applied([]));

    expect(plan.decisions).toEqual(['apply', 'apply']);
    expect(plan.applyOrder).toEqual([1, 0]);
  });

  it('applies only the next sequenced version and holds back the ones after a gap', () => {
    const plan = planVersions([event('sequenced', 4), event('sequenced', 2), event('sequenced', 3), event('sequenced', 2)], applied([['a-1', 1]]));

    expect(plan.decisions).toEqual(['apply', 'apply', 'apply', 'skip']);
    expect(plan.applyOrder).toEqual([1, 2, 0]);

    const gapped = planVersions([event('sequenced', 3), event('sequenced', 5)], applied([['a-1', 1]]));
    expect(gapped.decisions).toEqual(['gap', 'gap']);
    expect(gapped.versions.get(aggregateKey('allocation', 'a-1'))).toBe(1);
  });

  it('keeps aggregates apart', () => {
    const plan = planVersions([event('sequenced', 1, 'a-2'), event('sequenced', 2, 'a-1')], applied([['a-1', 1]]));

    expect(plan.decisions).toEqual(['apply', 'apply']);
    expect(plan.versions.get(aggregateKey('allocation', 'a-2'))).toBe(1);
    expect(plan.versions.get(aggregateKey('allocation', 'a-1'))).toBe(2);
  });
});
