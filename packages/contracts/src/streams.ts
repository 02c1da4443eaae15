import { SUBJECT_FAMILIES, prefixSubject } from './subjects.js';

/**
 * The JetStream streams that hold the platform's events: one per family, so
 * every subject a service may publish lands in exactly one stream. Streams are
 * transport, not storage: every consumer keeps what it needs, so messages
 * expire by age only. Any service that uses a stream creates or updates it
 * idempotently at start (`ensureStreams` in @aifactory/events).
 */
export interface StreamDeclaration {
  name: string;
  description: string;
  subjects: string[];
  retention: 'limits';
  storage: 'file';
  replicas: number;
  discard: 'old';
  /** How long a message stays, however often it was consumed. */
  maxAgeMs: number;
  /** -1: no byte limit; age alone bounds the stream, so no unconsumed event is dropped for space. */
  maxBytes: number;
  /** The largest message accepted; a bigger one is refused and its outbox row counts toward failed. */
  maxMessageBytes: number;
  /**
   * JetStream drops a message whose msg id (the event id) it saw this
   * recently. A bound, not a guarantee: consumers still dedupe by event id.
   */
  duplicateWindowMs: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

const DEFAULTS = {
  retention: 'limits',
  storage: 'file',
  replicas: 1,
  discard: 'old',
  maxBytes: -1,
  maxMessageBytes: 1024 * 1024,
  duplicateWindowMs: 2 * 60 * 1000,
} as const;

const STREAMS: readonly StreamDeclaration[] = [
  {
    ...DEFAULTS,
    name: 'PLATFORM_IAM',
    description: 'Identity, organizations, memberships and keys (owner: iam).',
    subjects: [`${SUBJECT_FAMILIES.platformIam}.>`],
    maxAgeMs: 7 * DAY_MS,
  },
  {
    ...DEFAULTS,
    name: 'PLATFORM_BILLING',
    description: 'Balances, ledger and payments (owner: billing).',
    subjects: [`${SUBJECT_FAMILIES.platformBilling}.>`],
    maxAgeMs: 7 * DAY_MS,
  },
  {
    ...DEFAULTS,
    name: 'PLATFORM_AUDIT',
    description: 'Audit actions, platform.audit.<publisher>.<action> (recorded by evidence).',
    subjects: [`${SUBJECT_FAMILIES.platformAudit}.>`],
    maxAgeMs: 30 * DAY_MS,
  },
  {
    ...DEFAULTS,
    name: 'PLATFORM_STATUS',
    description: 'Component status changes, platform.status.<service>.changed.',
    subjects: [`${SUBJECT_FAMILIES.platformStatus}.>`],
    maxAgeMs: 7 * DAY_MS,
  },
  {
    ...DEFAULTS,
    name: 'GPUAAS',
    description: 'GPUaaS events and its usage (gpuaas.usage.*).',
    subjects: [`${SUBJECT_FAMILIES.gpuaas}.>`],
    maxAgeMs: 14 * DAY_MS,
  },
  {
    ...DEFAULTS,
    name: 'APPPLATFORM',
    description: 'App Platform events and its usage (appplatform.usage.*).',
    subjects: [`${SUBJECT_FAMILIES.appplatform}.>`],
    maxAgeMs: 14 * DAY_MS,
  },
  {
    ...DEFAULTS,
    name: 'TOKENFACTORY',
    description: 'Token Factory events and its usage (tokenfactory.usage.*).',
    subjects: [`${SUBJECT_FAMILIES.tokenfactory}.>`],
    maxAgeMs: 14 * DAY_MS,
  },
];

export interface StreamDeclarationOptions {
  /** Tests: prefixes every subject with `<prefix>.` and every stream name with `<PREFIX>_`. */
  subjectPrefix?: string;
}

export function streamDeclarations(options: StreamDeclarationOptions = {}): StreamDeclaration[] {
  const { subjectPrefix } = options;
  return STREAMS.map((stream) => ({
    ...stream,
    name: subjectPrefix ? `${subjectPrefix.toUpperCase()}_${stream.name}` : stream.name,
    subjects: stream.subjects.map((subject) => prefixSubject(subject, subjectPrefix)),
  }));
}
