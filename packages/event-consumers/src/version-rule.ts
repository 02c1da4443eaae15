/**
 * The version rule of ARCHITECTURE.md (Decisions: Outbox and events), as a
 * pure function over one batch so it can be read and tested whole:
 *
 * - a *state* event carries the aggregate's current state: one older than or
 *   equal to the version already applied is dropped (`skip`); any newer one
 *   is applied, since it replaces everything before it;
 * - a *sequenced* event is one step of a story (usage `opened` then
 *   `closed`): only exactly the next version is applied; an older or equal one
 *   is dropped and a later one waits (`gap`) until the missing one arrives.
 *
 * Events of one aggregate are applied in ascending version order, whatever
 * order they arrived in, so two relays cannot reorder an aggregate's story.
 * A sequenced consumer must receive every event of its aggregates: a filter
 * that leaves some out leaves a gap that never closes.
 */

export type EventKind = 'state' | 'sequenced';

export interface VersionedEvent {
  kind: EventKind;
  aggregateType: string;
  aggregateId: string;
  aggregateVersion: number;
}

export type VersionDecision = 'apply' | 'skip' | 'gap';

export interface VersionPlan {
  /** One decision per input event, by index. */
  decisions: VersionDecision[];
  /** Indexes of the events to apply, in the order to apply them. */
  applyOrder: number[];
  /** The version each touched aggregate ends at, keyed by `aggregateKey`. */
  versions: Map<string, number>;
}

export function aggregateKey(aggregateType: string, aggregateId: string): string {
  return JSON.stringify([aggregateType, aggregateId]);
}

/**
 * Decides each event of a batch against the versions already applied
 * (`applied`, keyed by `aggregateKey`; a missing key means none yet).
 * Events whose decision is `apply` are listed in `applyOrder` grouped by
 * aggregate (in order of first appearance) and by ascending version.
 */
export function planVersions(events: readonly VersionedEvent[], applied: ReadonlyMap<string, number>): VersionPlan {
  const byAggregate = new Map<string, number[]>();
  events.forEach((event, index) => {
    const key = aggregateKey(event.aggregateType, event.aggregateId);
    const indexes = byAggregate.get(key);
    if (indexes) indexes.push(index);
    else byAggregate.set(key, [index]);
  });

  const decisions: VersionDecision[] = events.map(() => 'skip');
  const applyOrder: number[] = [];
  const versions = new Map<string, number>();
  for (const [key, indexes] of byAggregate) {
    let current = applied.get(key) ?? 0;
    const ascending = [...indexes].sort((a, b) => version(events, a) - version(events, b) || a - b);
    for (const index of ascending) {
      const event = events[index]!;
      const decision = decide(event, current);
      decisions[index] = decision;
      if (decision === 'apply') {
        applyOrder.push(index);
        current = event.aggregateVersion;
      }
    }
    versions.set(key, current);
  }
  return { decisions, applyOrder, versions };
}

function decide(event: VersionedEvent, current: number): VersionDecision {
  if (event.aggregateVersion <= current) return 'skip';
  switch (event.kind) {
    case 'state':
      return 'apply';
    case 'sequenced':
      return event.aggregateVersion === current + 1 ? 'apply' : 'gap';
    default: {
      const unknown: never = event.kind;
      throw new TypeError(`unknown event kind ${String(unknown)}`);
    }
  }
}

function version(events: readonly VersionedEvent[], index: number): number {
  return events[index]!.aggregateVersion;
}
