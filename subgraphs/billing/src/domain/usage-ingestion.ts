import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { effectivePolicy, parsePolicyValue, type PolicyKeyDef, type PolicySnapshot, type PolicyTarget } from '@aifactory/authz';
import type { Clock } from '@aifactory/clock';
import {
  eventEnvelopeSchema,
  loadRegistryData,
  parseEvent,
  prefixSubject,
  type EventEnvelope,
  type UsageClosedPayload,
  type UsageOpenedPayload,
  type UsageRecordedPayload,
  type UsageWindowSummaryPayload,
} from '@aifactory/contracts';
import type { NewDeadLetter } from '@aifactory/event-consumers';
import { inTransaction, type Tx } from '../data/transactions.js';
import {
  priceKey,
  unitKey,
  type IngestPrice,
  type IngestPriceBook,
  type IngestReferenceData,
  type PricingSpan,
  type UsageConflictRow,
  type UsageEventRow,
  type UsageIngestStore,
  type WindowSummaryRow,
} from '../data/usage-ingest-store.js';
import { usageFingerprint } from './usage-fingerprint.js';

/** Why a usage event was rejected (usage_events.rejection_reason): stable, for finance and for products. */
export const USAGE_REJECTION_REASONS = {
  /**
   * The payload breaks the usage contract, or a number is beyond what billing
   * meters (a point quantity above 10^15, a quantityPerSecond above 1,000,000).
   */
  invalidPayload: 'invalid_payload',
  /** No such unit at that version in the usage-unit registry. */
  unknownUnit: 'unknown_unit',
  retiredUnit: 'retired_unit',
  /** The organization stayed unknown to billing for the whole scope wait. */
  unknownOrganization: 'unknown_organization',
  /** The project stayed unknown for the scope wait, or belongs to another organization or department. */
  unknownProject: 'unknown_project',
  /** Older than policy `billing.usage.late_limit` when it arrived (never a closing: see `classify`). */
  tooLate: 'too_late',
  /** A point usage or an opening more than 5 minutes after billing's clock: time that has not happened is never billed. */
  inFuture: 'in_future',
  /**
   * The price book in force (in the organization's currency, that of its
   * funds) has no price for the unit and resource, or prices another
   * version of the unit.
   */
  unpriced: 'unpriced',
  /** A point unit on an interval event, or an interval unit on a point event. */
  unitMismatch: 'unit_mismatch',
  /** A closing whose interval's opening was rejected: there is no interval to close, and never will be. */
  openingRejected: 'opening_rejected',
} as const;

export type UsageRejectionReason = (typeof USAGE_REJECTION_REASONS)[keyof typeof USAGE_REJECTION_REASONS];

/** Why a message never became a usage row (dead_letters.reason), as @aifactory/event-consumers names them. */
export const USAGE_DEAD_LETTER_REASONS = {
  invalidEnvelope: 'invalid_envelope',
  unknownType: 'unknown_type',
  unknownVersion: 'unknown_version',
  invalidPayload: 'invalid_payload',
} as const;

/**
 * The policy values usage is ingested under. They are read when the event
 * arrives and stored on its row, so rating never reinterprets them later.
 */
export interface UsagePolicy {
  /** `billing.usage.late_limit`: usage whose time is further back than this is rejected. */
  lateLimitMs(organizationId: string, target: PolicyTarget): number;
  /** `billing.window_seconds`: the metering window an opening snapshots. */
  windowSeconds(organizationId: string, target: PolicyTarget): number;
  /** `billing.balance.low_warning_threshold` at the organization: minor units. */
  lowBalanceThreshold(organizationId: string): bigint;
}

/** IAM's policy snapshots as the access read model holds them. */
export interface PolicySnapshots {
  policy(organizationId: string): PolicySnapshot | undefined;
}

const LATE_LIMIT_KEY = 'billing.usage.late_limit';
const WINDOW_SECONDS_KEY = 'billing.window_seconds';
const LOW_BALANCE_KEY = 'billing.balance.low_warning_threshold';

const INT32_MAX = 2_147_483_647;
const INT64_MAX = 9_223_372_036_854_775_807n;
/**
 * The largest quantities billing meters. Rating multiplies them (by the
 * price, by a window's seconds) and sums them into int8 columns; a value
 * that overflowed there would fail every later rating of the organization.
 * 10^15 base units in one point event, and 10^6 per second over a window of
 * up to 2^31 s, leave thousands of times the headroom int8 needs.
 */
const MAX_POINT_QUANTITY = 1_000_000_000_000_000n;
const MAX_QUANTITY_PER_SECOND = 1_000_000n;
/** Clocks disagree a little; usage further ahead than this is not usage yet. */
const FUTURE_TOLERANCE_MS = 5 * 60_000;
const NUMERIC_30_DIGITS = 30;

/**
 * Policy from the access model's snapshot of the organization, or the
 * registry's defaults where IAM has published none for it. `accessModel` is
 * asked on every batch: the subgraph starts it after its workers.
 */
export function usagePolicyFrom(accessModel: () => PolicySnapshots): UsagePolicy {
  const value = (organizationId: string, target: PolicyTarget, key: string): bigint => {
    const snapshot = accessModel().policy(organizationId);
    const def = snapshot?.keys[key];
    if (snapshot === undefined || def === undefined) return registryDefault(key);
    return exactUnits(def, effectivePolicy(snapshot, target, key).value, key);
  };
  return {
    lateLimitMs: (organizationId, target) => Number(value(organizationId, target, LATE_LIMIT_KEY)) * 1000,
    windowSeconds: (organizationId, target) => windowOf(value(organizationId, target, WINDOW_SECONDS_KEY)),
    lowBalanceThreshold: (organizationId) => int64Of(value(organizationId, {}, LOW_BALANCE_KEY)),
  };
}

/** The registry's defaults (late limit P35D, windows PT1H, low balance 1000): for tests, and where no policy is read. */
export const defaultUsagePolicy: UsagePolicy = {
  lateLimitMs: () => Number(registryDefault(LATE_LIMIT_KEY)) * 1000,
  windowSeconds: () => windowOf(registryDefault(WINDOW_SECONDS_KEY)),
  lowBalanceThreshold: () => int64Of(registryDefault(LOW_BALANCE_KEY)),
};

function registryDefault(key: string): bigint {
  const row = loadRegistryData().policyKeys.find((candidate) => candidate.key === key);
  if (row === undefined) throw new Error(`policy key ${key} is not in the registry`);
  return exactUnits(row, row.default, key);
}

function exactUnits(def: Pick<PolicyKeyDef, 'type' | 'enumValues'>, value: unknown, key: string): bigint {
  const parsed = parsePolicyValue(def as PolicyKeyDef, value);
  // IAM checked the value when it was written; one that no longer parses is a defect, not something to guess around.
  if (!parsed.ok) throw new Error(`policy ${key} holds ${String(value)}, not ${parsed.problem}`);
  return parsed.exact.units;
}

/** A window must be at least a second (a zero-length window cannot meter) and fit the column. */
function windowOf(seconds: bigint): number {
  return Number(seconds < 1n ? 1n : seconds > BigInt(INT32_MAX) ? BigInt(INT32_MAX) : seconds);
}

function int64Of(value: bigint): bigint {
  return value > INT64_MAX ? INT64_MAX : value < -INT64_MAX ? -INT64_MAX : value;
}

/** One JetStream message, as ingestion needs it. */
export interface UsageDelivery {
  /** As received, with any test prefix. */
  subject: string;
  body: string;
  /** When JetStream stored it: the ingest lag counts from here. */
  publishedAt: Date;
  /** JetStream's delivery count: the scope wait is counted in billing's own redeliveries. */
  deliveries: number;
  /** Names a dead letter whose body has no event id (the msg id, else `<stream>:<seq>`). */
  fallbackId: string;
}

export type UsageOutcome =
  /** Settled: a row (or a conflict, or a window summary) is committed, or it was already there. */
  | { outcome: 'accepted' | 'rejected' | 'duplicate' | 'conflict' | 'summary' }
  /** Its organization or project is not known yet: deliver it again in `retryInMs`. */
  | { outcome: 'waiting'; retryInMs: number }
  /** Never a usage row: recorded in dead_letters. */
  | { outcome: 'dead_lettered'; reason: string };

export interface IngestResult {
  /** Set when the batch accepted usage: the batch to rate. */
  batchId: string | null;
  /** By index of the deliveries. */
  outcomes: UsageOutcome[];
}

export interface UsageIngestionSettings {
  /** The durable consumer's name: its dead letters are keyed by it. */
  consumer: string;
  subjectPrefix: string;
  policy: UsagePolicy;
  /**
   * How long usage of an organization or project billing does not know yet
   * is put back: the sum of the redelivery delays billing asked for, so a
   * backlog (billing down, the stream full of old messages) waits as long
   * as fresh usage does.
   */
  scopeWaitMs: number;
  clock: Clock;
}

/** Redelivery delays while a scope is unknown; the last one repeats until the wait is over. */
const SCOPE_WAIT_BACKOFF_MS: readonly number[] = [1_000, 2_000, 5_000, 10_000, 30_000];

const USAGE_TYPE = /^(gpuaas|appplatform|tokenfactory)\.usage\.(recorded|opened|closed|window_summary)$/;
const MAX_DETAIL_CHARS = 2_000;
/** A JSON escape of NUL, or of a surrogate outside a pair. */
const UNSTORABLE_ESCAPE = /\\u0000|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}/;

type UsageKind = UsageEventRow['kind'];

/** What a usage event says, once its payload passed the contract. */
interface UsageFacts {
  usageId: string;
  resourceType: string;
  resourceId: string;
  unitId: string;
  unitVersion: number;
  /** The API key the usage was made with, if any. */
  apiKeyId: string | null;
  /** Point: base units consumed; intervals: base units per second. */
  quantity: bigint;
  occurredAt: Date;
  openedAt: Date | null;
}

type ReadMessage =
  | { read: 'dead'; letter: Omit<NewDeadLetter, 'deliveries' | 'subject'> }
  | { read: 'summary'; row: WindowSummaryRow }
  | { read: 'usage'; envelope: EventEnvelope; raw: unknown; fingerprint: string; kind: UsageKind; product: string; facts: UsageFacts | { invalid: string } };

type UsageMessage = Extract<ReadMessage, { read: 'usage' }>;

type Verdict =
  | { verdict: 'accept'; row: UsageEventRow }
  | { verdict: 'reject'; row: UsageEventRow }
  | { verdict: 'wait'; retryInMs: number };

/**
 * Billing's intake of products' usage (ARCHITECTURE.md, Usage contract):
 * each batch of messages is ingested in one transaction, once per event id.
 * An event is accepted with everything rating needs decided now (the price
 * in force at its time in the organization's currency, the policy values
 * of this moment) or rejected with a stable reason; either way its row is
 * the record. The same id again is a duplicate, or, with other content, a
 * conflict kept apart and never applied. Usage of an organization or project
 * billing has not heard of yet waits (the hierarchy projection may be behind)
 * until the scope wait is over.
 */
export class UsageIngestion {
  constructor(
    private readonly pool: pg.Pool,
    private readonly store: UsageIngestStore,
    private readonly options: UsageIngestionSettings,
  ) {}

  async ingest(deliveries: readonly UsageDelivery[]): Promise<IngestResult> {
    const reads = deliveries.map((delivery) => this.read(delivery));
    return inTransaction(this.pool, async (tx) => {
      const outcomes: UsageOutcome[] = new Array(deliveries.length);
      const letters: NewDeadLetter[] = [];
      const summaries = new Map<string, WindowSummaryRow>();
      const usage: { index: number; message: UsageMessage }[] = [];
      reads.forEach((read, index) => {
        const delivery = deliveries[index]!;
        switch (read.read) {
          case 'dead':
            letters.push({ ...read.letter, subject: delivery.subject, deliveries: delivery.deliveries });
            outcomes[index] = { outcome: 'dead_lettered', reason: read.letter.reason };
            return;
          case 'summary': {
            // One row per window: the highest recount of the batch is the one that can win.
            const key = `${read.row.product}|${read.row.organizationId}|${read.row.unitId}|${read.row.windowStart.toISOString()}`;
            const held = summaries.get(key);
            if (!held || held.recount < read.row.recount) summaries.set(key, read.row);
            outcomes[index] = { outcome: 'summary' };
            return;
          }
          case 'usage':
            usage.push({ index, message: read });
            return;
          default: {
            const unknown: never = read;
            throw new TypeError(`unknown read ${JSON.stringify(unknown)}`);
          }
        }
      });

      const batchId = randomUUID();
      const accepted = await this.ingestUsage(tx, batchId, usage, deliveries, outcomes);
      if (accepted > 0) await this.store.insertBatch(tx, batchId, accepted);
      await this.store.upsertWindowSummaries(tx, [...summaries.values()].sort(bySummaryKey));
      await this.store.recordDeadLetters(tx, this.options.consumer, letters);
      return { batchId: accepted > 0 ? batchId : null, outcomes };
    });
  }

  /** Classifies, inserts and settles the batch's usage events; returns how many it accepted. */
  private async ingestUsage(
    tx: Tx,
    batchId: string,
    usage: readonly { index: number; message: UsageMessage }[],
    deliveries: readonly UsageDelivery[],
    outcomes: UsageOutcome[],
  ): Promise<number> {
    if (usage.length === 0) return 0;
    const reference = await this.store.referenceData(
      tx,
      distinct(usage.map(({ message }) => message.envelope.organizationId)),
      distinct(usage.map(({ message }) => message.envelope.projectId)),
    );
    const prices = new PriceIndex(await this.store.priceBooks(tx, pricingSpans(usage, reference), distinct(usage.map(({ message }) => factsOf(message)?.unitId ?? null))));
    const policy = new BatchPolicy(this.options.policy);
    const now = this.options.clock.now();

    // The first message of an id speaks for it; later copies in the batch compare against what it became.
    const leaders = new Map<string, { index: number; message: UsageMessage; verdict: Verdict }>();
    const followers: { index: number; message: UsageMessage }[] = [];
    for (const { index, message } of usage) {
      if (leaders.has(message.envelope.id)) {
        followers.push({ index, message });
        continue;
      }
      const verdict = this.classify(message, deliveries[index]!, reference, prices, policy, now);
      leaders.set(message.envelope.id, { index, message, verdict });
    }

    // Accepted closings go in last: whether their opening was rejected is read once the batch's own openings are stored.
    const isClosing = (verdict: Verdict) => verdict.verdict === 'accept' && verdict.row.kind === 'closed';
    let rows = rowsOf([...leaders.values()].filter(({ verdict }) => !isClosing(verdict)));
    const inserted = await this.store.insertEvents(tx, batchId, rows);
    const closings = [...leaders.values()].filter(({ verdict }) => isClosing(verdict));
    if (closings.length > 0) {
      const orphaned = await this.store.rejectedOpenings(tx, distinct(closings.map(({ message }) => factsOf(message)!.usageId)));
      for (const leader of closings) {
        const { usageId } = factsOf(leader.message)!;
        if (orphaned.has(usageId)) {
          leader.verdict = {
            verdict: 'reject',
            row: rejectedRow(leader.message, deliveries[leader.index]!, USAGE_REJECTION_REASONS.openingRejected, `the opening of interval ${usageId} was rejected`),
          };
        }
      }
      const closingRows = rowsOf(closings);
      for (const eventId of await this.store.insertEvents(tx, batchId, closingRows)) inserted.add(eventId);
      rows = [...rows, ...closingRows];
    }
    const existing = await this.store.fingerprints(
      tx,
      rows.filter((row) => !inserted.has(row.eventId)).map((row) => row.eventId),
    );

    const conflicts: UsageConflictRow[] = [];
    const settle = (message: UsageMessage, storedFingerprint: string): UsageOutcome => {
      if (storedFingerprint === message.fingerprint) return { outcome: 'duplicate' };
      conflicts.push({ eventId: message.envelope.id, fingerprint: message.fingerprint, organizationId: message.envelope.organizationId, envelope: message.raw });
      return { outcome: 'conflict' };
    };
    let accepted = 0;
    for (const { index, message, verdict } of leaders.values()) {
      if (verdict.verdict === 'wait') {
        outcomes[index] = { outcome: 'waiting', retryInMs: verdict.retryInMs };
      } else if (inserted.has(message.envelope.id)) {
        outcomes[index] = { outcome: verdict.verdict === 'accept' ? 'accepted' : 'rejected' };
        if (verdict.verdict === 'accept') accepted += 1;
      } else {
        outcomes[index] = settle(message, existing.get(message.envelope.id)!);
      }
    }
    for (const { index, message } of followers) {
      const leader = leaders.get(message.envelope.id)!;
      const leaderOutcome = outcomes[leader.index]!;
      if (leaderOutcome.outcome === 'waiting') {
        // Judged again with its leader when both come back.
        outcomes[index] = leaderOutcome;
        continue;
      }
      outcomes[index] = settle(message, existing.get(message.envelope.id) ?? leader.message.fingerprint);
    }
    await this.store.insertConflicts(tx, conflicts);
    return accepted;
  }

  /** Accept, reject or wait: the checks in the order a product can act on them. */
  private classify(
    message: UsageMessage,
    delivery: UsageDelivery,
    reference: IngestReferenceData,
    prices: PriceIndex,
    policy: BatchPolicy,
    now: Date,
  ): Verdict {
    const { envelope, facts } = message;
    const reject = (reason: UsageRejectionReason, detail: string): Verdict => ({ verdict: 'reject', row: rejectedRow(message, delivery, reason, detail) });
    if ('invalid' in facts) return reject(USAGE_REJECTION_REASONS.invalidPayload, facts.invalid);
    const { organizationId, departmentId, projectId } = envelope;
    if (organizationId === null || departmentId === null || projectId === null) {
      return reject(USAGE_REJECTION_REASONS.invalidPayload, 'usage names its organization, department and project');
    }

    const unit = reference.units.get(unitKey(facts.unitId, facts.unitVersion));
    if (unit === undefined) return reject(USAGE_REJECTION_REASONS.unknownUnit, `unit ${facts.unitId} version ${facts.unitVersion} is not registered`);
    if (unit.lifecycle === 'retired') return reject(USAGE_REJECTION_REASONS.retiredUnit, `unit ${facts.unitId} version ${facts.unitVersion} is retired`);
    const wanted = message.kind === 'recorded' ? 'point' : 'interval';
    if (unit.ratingCategory !== wanted) {
      return reject(USAGE_REJECTION_REASONS.unitMismatch, `unit ${facts.unitId} is rated as ${unit.ratingCategory}, a ${message.kind} event needs ${wanted}`);
    }

    const currency = reference.currencies.get(organizationId);
    const project = reference.projects.get(projectId);
    if (currency === undefined || project === undefined) {
      const retryInMs = scopeWaitDelayMs(delivery.deliveries, this.options.scopeWaitMs);
      if (retryInMs > 0) return { verdict: 'wait', retryInMs };
      return currency === undefined
        ? reject(USAGE_REJECTION_REASONS.unknownOrganization, `organization ${organizationId} is not known to billing`)
        : reject(USAGE_REJECTION_REASONS.unknownProject, `project ${projectId} is not known to billing`);
    }
    if (project.organizationId !== organizationId || project.departmentId !== departmentId) {
      return reject(
        USAGE_REJECTION_REASONS.unknownProject,
        `project ${projectId} belongs to organization ${project.organizationId}, department ${project.departmentId}`,
      );
    }

    const target: PolicyTarget = { projectId, departmentId };
    // A closing is never too late or too early: refusing it would leave its interval billed forever. A closing
    // ahead of billing's clock closes now (billing never bills time that has not happened), one before its opening at the opening.
    let { occurredAt } = facts;
    if (message.kind === 'closed') {
      if (occurredAt > now) occurredAt = now;
      if (occurredAt < facts.openedAt!) occurredAt = facts.openedAt!;
    } else {
      if (occurredAt.getTime() - now.getTime() > FUTURE_TOLERANCE_MS) {
        return reject(USAGE_REJECTION_REASONS.inFuture, `${occurredAt.toISOString()} is more than ${FUTURE_TOLERANCE_MS / 1000} s after ${now.toISOString()}`);
      }
      const lateLimitMs = policy.lateLimitMs(organizationId, target);
      if (now.getTime() - occurredAt.getTime() > lateLimitMs) {
        return reject(USAGE_REJECTION_REASONS.tooLate, `${occurredAt.toISOString()} is more than ${lateLimitMs / 1000} s before ${now.toISOString()}`);
      }
    }

    // Intervals are priced as they opened, for their whole life (ARCHITECTURE.md, Usage contract).
    const pricedAt = facts.openedAt ?? facts.occurredAt;
    const price = prices.priceAt(currency, facts.unitId, facts.resourceType, facts.resourceId, pricedAt);
    if (price === undefined) {
      return reject(
        USAGE_REJECTION_REASONS.unpriced,
        `no ${currency} price for ${facts.unitId} of ${facts.resourceType} ${facts.resourceId} at ${pricedAt.toISOString()}`,
      );
    }
    // A price is set for one version of its unit; another version may count other base units, so it is not priced.
    if (price.unitVersion !== facts.unitVersion) {
      return reject(
        USAGE_REJECTION_REASONS.unpriced,
        `the ${currency} price for ${facts.unitId} of ${facts.resourceType} ${facts.resourceId} at ${pricedAt.toISOString()} is for version ${price.unitVersion}, not ${facts.unitVersion}`,
      );
    }

    return {
      verdict: 'accept',
      row: {
        ...baseRow(message, delivery),
        status: 'accepted',
        occurredAt,
        currency,
        priceBookId: price.book.id,
        priceBookVersion: price.book.version,
        unitPrice: price.unitPrice,
        basePerUnit: unit.basePerUnit,
        windowSeconds: message.kind === 'opened' ? policy.windowSeconds(organizationId, target) : null,
        lowBalanceThreshold: policy.lowBalanceThreshold(organizationId),
        envelope: null,
      },
    };
  }

  private read(delivery: UsageDelivery): ReadMessage {
    const dead = (eventId: string, envelope: unknown, reason: string, detail: string): ReadMessage => ({
      read: 'dead',
      letter: { eventId, envelope, reason, detail: detail.slice(0, MAX_DETAIL_CHARS) },
    });
    const { body } = delivery;
    // Postgres text and jsonb hold neither NUL nor half a surrogate pair: such a body is set aside as text, never stored as usage.
    if (body.includes('\u0000') || (body.includes('\\u') && UNSTORABLE_ESCAPE.test(body))) {
      return dead(delivery.fallbackId, body.replaceAll('\u0000', ''), USAGE_DEAD_LETTER_REASONS.invalidEnvelope, 'the body holds a character Postgres cannot store');
    }
    let raw: unknown;
    try {
      raw = JSON.parse(body);
    } catch {
      return dead(delivery.fallbackId, body, USAGE_DEAD_LETTER_REASONS.invalidEnvelope, 'the body is not JSON');
    }
    const parsed = eventEnvelopeSchema.safeParse(raw);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
      return dead(idOf(raw) ?? delivery.fallbackId, raw, USAGE_DEAD_LETTER_REASONS.invalidEnvelope, detail);
    }
    const envelope = withLowerCaseIds(parsed.data);
    const match = USAGE_TYPE.exec(envelope.type);
    if (match === null || prefixSubject(envelope.type, this.options.subjectPrefix) !== delivery.subject) {
      // A product publishes only its own usage, on the subject its type names (NATS permissions are per subject).
      return dead(envelope.id, raw, USAGE_DEAD_LETTER_REASONS.unknownType, `${envelope.type} is not usage billing ingests from ${delivery.subject}`);
    }
    const [, product, name] = match as unknown as [string, string, UsageKind | 'window_summary'];
    const contract = parseEvent(envelope);
    if (!contract.ok && contract.reason !== 'invalid_payload') {
      return dead(envelope.id, raw, contract.reason, `no contract for ${envelope.type} v${envelope.version}`);
    }
    if (name === 'window_summary') {
      if (!contract.ok) return dead(envelope.id, raw, USAGE_DEAD_LETTER_REASONS.invalidPayload, contract.issues.join('; '));
      return this.summaryOf(envelope, raw, product, contract.payload as UsageWindowSummaryPayload);
    }
    const facts = contract.ok ? factsFrom(name, contract.payload) : { invalid: contract.issues.join('; ').slice(0, MAX_DETAIL_CHARS) };
    return { read: 'usage', envelope, raw, fingerprint: usageFingerprint(envelope), kind: name, product, facts };
  }

  private summaryOf(envelope: EventEnvelope, raw: unknown, product: string, payload: UsageWindowSummaryPayload): ReadMessage {
    const problem =
      envelope.organizationId === null
        ? 'a window summary names its organization'
        : payload.quantity.length > NUMERIC_30_DIGITS
          ? 'quantity has more than 30 digits'
          : payload.eventCount > INT32_MAX || envelope.aggregateVersion > INT32_MAX
            ? 'eventCount and the recount must fit 32 bits'
            : null;
    if (problem !== null || envelope.organizationId === null) {
      return { read: 'dead', letter: { eventId: envelope.id, envelope: raw, reason: USAGE_DEAD_LETTER_REASONS.invalidPayload, detail: problem } };
    }
    return {
      read: 'summary',
      row: {
        product,
        organizationId: envelope.organizationId,
        unitId: payload.unit,
        windowStart: new Date(payload.windowStart),
        windowEnd: new Date(payload.windowEnd),
        eventCount: payload.eventCount,
        quantity: payload.quantity,
        // The emitter numbers a window's counts 1, 2, ... as its aggregate version.
        recount: envelope.aggregateVersion,
        eventId: envelope.id,
      },
    };
  }
}

/** The facts of a contract-valid payload, or why they still do not fit billing's columns. */
function factsFrom(kind: UsageKind, payload: unknown): UsageFacts | { invalid: string } {
  const subject = payload as UsageRecordedPayload | UsageOpenedPayload | UsageClosedPayload;
  if (subject.unitVersion > INT32_MAX) return { invalid: 'unitVersion must fit 32 bits' };
  const common = {
    usageId: subject.usageId,
    resourceType: subject.resourceType,
    resourceId: subject.resourceId,
    unitId: subject.unit,
    unitVersion: subject.unitVersion,
    apiKeyId: subject.apiKeyId ?? null,
  };
  if (kind === 'recorded') {
    const recorded = payload as UsageRecordedPayload;
    const quantity = BigInt(recorded.quantity);
    if (quantity <= 0n || quantity > MAX_POINT_QUANTITY) return { invalid: `quantity must be a whole number of base units from 1 to ${MAX_POINT_QUANTITY}` };
    return { ...common, quantity, occurredAt: new Date(recorded.occurredAt), openedAt: null };
  }
  const interval = payload as UsageOpenedPayload | UsageClosedPayload;
  const quantity = BigInt(interval.quantityPerSecond ?? '1');
  if (quantity > MAX_QUANTITY_PER_SECOND) return { invalid: `quantityPerSecond must be at most ${MAX_QUANTITY_PER_SECOND}` };
  const openedAt = new Date(interval.openedAt);
  if (kind === 'opened') return { ...common, quantity, occurredAt: openedAt, openedAt };
  // As sent: `classify` decides the time a closing closes at (never before its opening, never ahead of billing's clock).
  return { ...common, quantity, occurredAt: new Date((interval as UsageClosedPayload).closedAt), openedAt };
}

/**
 * The envelope with its ids, and the payload's usage id, in lower case: zod
 * accepts an upper-case uuid, Postgres answers in lower case, and billing
 * keys events, scopes and intervals by those answers.
 */
function withLowerCaseIds(envelope: EventEnvelope): EventEnvelope {
  const lower = (id: string | null) => (id === null ? null : id.toLowerCase());
  const { payload } = envelope;
  return {
    ...envelope,
    id: envelope.id.toLowerCase(),
    organizationId: lower(envelope.organizationId),
    departmentId: lower(envelope.departmentId),
    projectId: lower(envelope.projectId),
    payload: typeof payload.usageId === 'string' ? { ...payload, usageId: payload.usageId.toLowerCase() } : payload,
  };
}

/**
 * How long to put back usage of a scope billing does not know yet, on its
 * `deliveries`-th delivery; 0 once the delays asked for before add up to the
 * wait. Counted in billing's own deliveries, never from the publish time:
 * after a backlog every message is old, and would be rejected unseen.
 */
function scopeWaitDelayMs(deliveries: number, scopeWaitMs: number): number {
  let leftMs = scopeWaitMs;
  for (let delivery = 1; ; delivery += 1) {
    const delayMs = Math.min(SCOPE_WAIT_BACKOFF_MS[Math.min(delivery, SCOPE_WAIT_BACKOFF_MS.length) - 1]!, leftMs);
    if (delayMs <= 0 || delivery >= deliveries) return Math.max(delayMs, 0);
    leftMs -= delayMs;
  }
}

/** The rows of leaders settled now, in one lock order for every instance: two batches holding the same ids wait for each other instead of deadlocking. */
function rowsOf(leaders: readonly { verdict: Verdict }[]): UsageEventRow[] {
  return leaders
    .flatMap(({ verdict }) => (verdict.verdict === 'wait' ? [] : [verdict.row]))
    .sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
}

function factsOf(message: UsageMessage): UsageFacts | undefined {
  return 'invalid' in message.facts ? undefined : message.facts;
}

function baseRow(message: UsageMessage, delivery: UsageDelivery): Omit<UsageEventRow, 'status'> {
  const { envelope } = message;
  const facts = factsOf(message);
  return {
    eventId: envelope.id,
    fingerprint: message.fingerprint,
    eventType: envelope.type,
    product: message.product,
    kind: message.kind,
    rejectionReason: null,
    rejectionDetail: null,
    organizationId: envelope.organizationId,
    departmentId: envelope.departmentId,
    projectId: envelope.projectId,
    actorType: envelope.actor.type,
    actorId: envelope.actor.id,
    apiKeyId: facts?.apiKeyId ?? null,
    usageId: facts?.usageId ?? null,
    resourceType: facts?.resourceType ?? null,
    resourceId: facts?.resourceId ?? null,
    unitId: facts?.unitId ?? null,
    unitVersion: facts?.unitVersion ?? null,
    quantity: facts?.quantity ?? null,
    occurredAt: facts?.occurredAt ?? null,
    openedAt: facts?.openedAt ?? null,
    currency: null,
    priceBookId: null,
    priceBookVersion: null,
    unitPrice: null,
    basePerUnit: null,
    windowSeconds: null,
    lowBalanceThreshold: null,
    correlationId: envelope.correlationId,
    envelope: null,
    publishedAt: delivery.publishedAt,
  };
}

function rejectedRow(message: UsageMessage, delivery: UsageDelivery, reason: UsageRejectionReason, detail: string): UsageEventRow {
  return { ...baseRow(message, delivery), status: 'rejected', rejectionReason: reason, rejectionDetail: detail.slice(0, MAX_DETAIL_CHARS), envelope: message.raw };
}

/** Per currency, the earliest and latest instant the batch's usage is priced at. */
function pricingSpans(usage: readonly { message: UsageMessage }[], reference: IngestReferenceData): PricingSpan[] {
  const spans = new Map<string, PricingSpan>();
  for (const { message } of usage) {
    const facts = factsOf(message);
    const currency = message.envelope.organizationId === null ? undefined : reference.currencies.get(message.envelope.organizationId);
    if (facts === undefined || currency === undefined) continue;
    const at = facts.openedAt ?? facts.occurredAt;
    const span = spans.get(currency);
    if (!span) spans.set(currency, { currency, first: at, last: at });
    else if (at < span.first) span.first = at;
    else if (at > span.last) span.last = at;
  }
  return [...spans.values()];
}

/** `PriceBookStore.priceInForce`, answered from the batch's books: the book in force, then the resource's, its type's or the unit's price. */
class PriceIndex {
  private readonly booksByCurrency = new Map<string, IngestPriceBook[]>();

  constructor(books: readonly IngestPriceBook[]) {
    for (const book of books) {
      const list = this.booksByCurrency.get(book.currency);
      if (list) list.push(book);
      else this.booksByCurrency.set(book.currency, [book]);
    }
    // Newest first; the higher version wins a tie, as priceInForce orders them.
    for (const list of this.booksByCurrency.values()) list.sort((a, b) => b.effectiveFromMs - a.effectiveFromMs || b.version - a.version);
  }

  /** The most specific price of the book in force, whichever unit version it is for: the caller compares versions. */
  priceAt(currency: string, unitId: string, resourceType: string, resourceId: string, at: Date): ({ book: IngestPriceBook } & IngestPrice) | undefined {
    const atMs = at.getTime();
    const book = this.booksByCurrency.get(currency)?.find((candidate) => candidate.effectiveFromMs <= atMs);
    if (book === undefined) return undefined;
    const price =
      book.prices.get(priceKey(unitId, resourceType, resourceId)) ?? book.prices.get(priceKey(unitId, resourceType, '*')) ?? book.prices.get(priceKey(unitId, '*', '*'));
    return price === undefined ? undefined : { book, ...price };
  }
}

/** The policy values of one batch, asked once per organization and project. */
class BatchPolicy {
  private readonly cache = new Map<string, number | bigint>();

  constructor(private readonly policy: UsagePolicy) {}

  lateLimitMs(organizationId: string, target: PolicyTarget): number {
    return this.memo(`late|${organizationId}|${target.projectId}`, () => this.policy.lateLimitMs(organizationId, target));
  }

  windowSeconds(organizationId: string, target: PolicyTarget): number {
    return this.memo(`window|${organizationId}|${target.projectId}`, () => this.policy.windowSeconds(organizationId, target));
  }

  lowBalanceThreshold(organizationId: string): bigint {
    return this.memo(`low|${organizationId}`, () => this.policy.lowBalanceThreshold(organizationId));
  }

  private memo<T extends number | bigint>(key: string, read: () => T): T {
    const held = this.cache.get(key);
    if (held !== undefined) return held as T;
    const value = read();
    this.cache.set(key, value);
    return value;
  }
}

function distinct(values: readonly (string | null)[]): string[] {
  return [...new Set(values.filter((value): value is string => value !== null))];
}

function bySummaryKey(a: WindowSummaryRow, b: WindowSummaryRow): number {
  const left = `${a.product}|${a.organizationId}|${a.unitId}|${a.windowStart.toISOString()}`;
  const right = `${b.product}|${b.organizationId}|${b.unitId}|${b.windowStart.toISOString()}`;
  return left < right ? -1 : left > right ? 1 : 0;
}

function idOf(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null || !('id' in raw)) return undefined;
  const id = (raw as { id: unknown }).id;
  return typeof id === 'string' && id.length > 0 && id.length <= 200 ? id : undefined;
}
