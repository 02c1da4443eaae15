import { AppError } from '@aifactory/errors';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
} from '@nats-io/jetstream';

/**
 * A durable JetStream consumer as code: declared beside the worker that runs
 * it and created or updated at start by `ensureConsumer`.
 */
export interface ConsumerDeclaration {
  durableName: string;
  /** Subjects of the stream this consumer receives; several need nats-server 2.10. */
  filterSubjects: readonly string[];
  /** How long a delivered message may stay unacknowledged (a crashed worker's) before JetStream redelivers it. */
  ackWaitMs: number;
  /** Deliveries before the event goes to dead letters. */
  maxDeliver: number;
  /** Delay before redelivery after the n-th failed delivery; the last value repeats. Empty: at once. */
  backoffMs: readonly number[];
}

export type EnsureConsumerOutcome = 'created' | 'updated' | 'unchanged';

const DURABLE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const NANOS_PER_MS = 1_000_000;

/**
 * Creates the durable consumer, or brings an existing one to the declaration;
 * calling it again with the same declaration changes nothing.
 *
 * `backoffMs` is not sent to JetStream: a consumer's `backoff` replaces its
 * `ack_wait` (nats-server uses backoff[0] as the ack wait), so a short first
 * backoff would redeliver events still being processed. The consumer helper
 * naks failures with these delays itself instead.
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  declaration: ConsumerDeclaration,
): Promise<{ outcome: EnsureConsumerOutcome; info: ConsumerInfo }> {
  assertValidDeclaration(declaration);
  const wanted = consumerConfig(declaration);
  const existing = await consumerInfo(jsm, stream, declaration.durableName);
  if (existing === undefined) {
    return { outcome: 'created', info: await jsm.consumers.add(stream, wanted) };
  }
  if (matches(existing.config, wanted)) return { outcome: 'unchanged', info: existing };
  const { durable_name: _durable, ack_policy: _ack, deliver_policy: _deliver, ...update } = wanted;
  return { outcome: 'updated', info: await jsm.consumers.update(stream, declaration.durableName, update) };
}

/** The delay before the next delivery after `deliveryCount` failed ones. */
export function backoffDelayMs(declaration: ConsumerDeclaration, deliveryCount: number): number {
  const { backoffMs } = declaration;
  if (backoffMs.length === 0) return 0;
  return backoffMs[Math.min(Math.max(deliveryCount, 1), backoffMs.length) - 1]!;
}

function consumerConfig(declaration: ConsumerDeclaration): Partial<ConsumerConfig> {
  const [only, ...more] = declaration.filterSubjects;
  return {
    durable_name: declaration.durableName,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: declaration.ackWaitMs * NANOS_PER_MS,
    max_deliver: declaration.maxDeliver,
    // One subject goes in `filter_subject`, which servers before 2.10 understand.
    ...(more.length === 0 ? { filter_subject: only } : { filter_subjects: [...declaration.filterSubjects] }),
  };
}

function matches(current: ConsumerConfig, wanted: Partial<ConsumerConfig>): boolean {
  return (
    current.ack_wait === wanted.ack_wait &&
    current.max_deliver === wanted.max_deliver &&
    (current.backoff ?? []).length === 0 &&
    sameSubjects(filterSubjectsOf(current), filterSubjectsOf(wanted))
  );
}

function filterSubjectsOf(config: Partial<ConsumerConfig>): string[] {
  if (config.filter_subjects && config.filter_subjects.length > 0) return [...config.filter_subjects].sort();
  return config.filter_subject ? [config.filter_subject] : [];
}

function sameSubjects(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((subject, i) => subject === b[i]);
}

async function consumerInfo(jsm: JetStreamManager, stream: string, name: string): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound) return undefined;
    throw error;
  }
}

function assertValidDeclaration(declaration: ConsumerDeclaration): void {
  const problems: string[] = [];
  if (!DURABLE_NAME.test(declaration.durableName)) problems.push(`durableName must match ${DURABLE_NAME.source}`);
  if (declaration.filterSubjects.length === 0) problems.push('filterSubjects must name at least one subject');
  if (!Number.isInteger(declaration.ackWaitMs) || declaration.ackWaitMs <= 0) problems.push('ackWaitMs must be a positive integer');
  if (!Number.isInteger(declaration.maxDeliver) || declaration.maxDeliver < 1) problems.push('maxDeliver must be at least 1');
  if (declaration.backoffMs.some((ms) => !Number.isInteger(ms) || ms < 0)) problems.push('backoffMs must be non-negative integers');
  if (problems.length > 0) {
    throw new AppError('INTERNAL_ERROR', 'Internal error', {
      details: { consumer: declaration.durableName, problems },
    });
  }
}
