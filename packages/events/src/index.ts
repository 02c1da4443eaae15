export { ensureStreams, type EnsuredStream, type StreamChange } from './streams.js';
export { writeOutboxEvent, type OutboxEventInput, type OutboxWriteOptions } from './outbox-writer.js';
export { OutboxRelay, outboxEnvelopeOf, type OutboxRelayOptions, type RelayCycle } from './relay.js';
export { classifyPublishError, type PublishFailure } from './publish-failure.js';
export { pruneOutbox, replayFailedEvents, type OutboxRetention, type ReplayFilter } from './outbox-maintenance.js';
export { readOutboxSnapshot, type OutboxSnapshot } from './outbox-metrics.js';
export { OUTBOX_ROW_COLUMNS, type OutboxRow, type Queryable } from './outbox-table.js';
export { auditOutboxEvent, type AuditedResource, type AuditEventInput } from './audit-event.js';
