export {
  AGGREGATE_VERSIONS_SQL,
  CONSUMER_TABLES_SQL,
  DEAD_LETTERS_SQL,
  PROCESSED_EVENTS_SQL,
} from './consumer-tables.js';
export {
  backoffDelayMs,
  ensureConsumer,
  type ConsumerDeclaration,
  type EnsureConsumerOutcome,
} from './consumer-declaration.js';
export type { ConsumerOutcome } from './consumer-metrics.js';
export {
  DEAD_LETTER_REASONS,
  listDeadLetters,
  recordDeadLetters,
  replayDeadLetter,
  type DeadLetter,
  type NewDeadLetter,
  type ReplayResult,
} from './dead-letters.js';
export type {
  ConsumedEvent,
  DecodeEvent,
  DecodeResult,
  EventApplication,
  HandleEvents,
  KindOf,
  Transaction,
} from './event-application.js';
export { inBatches, runConsumer, type RunConsumerOptions, type RunningConsumer } from './run-consumer.js';
export type { EventKind } from './version-rule.js';
