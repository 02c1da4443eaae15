/**
 * Shared test helpers for billing's usage pipeline (issue 17): publish usage
 * the way products do (`@aifactory/usage-emitter` events, as the outbox relay
 * sends them), make usage "known" (billing's organizations, departments and
 * projects rows, which iam's events normally fill) and price it (price books
 * written straight into the tables, so they may start in the past).
 *
 * Exports (stable; other test files import them):
 * - `USAGE`: one `UsageEvents` emitter per product (`USAGE.tokenfactory.recorded(scope, usage)`).
 * - `uniqueCurrency()`: a random 3-letter code, so a test's price books are its own.
 * - `knownScope(db, options?)`: inserts an organization (billing currency), its funds row and accounts
 *   (as the hierarchy projection opens them), department and project rows; returns a `KnownScope`
 *   (`UsageScope` of the emitter + `currency`, the funds row's). Pass the ids of an organization
 *   `BillingFixture.organization()` opened to make its usage known.
 * - `knownProject(db, scope, options?)`: one more project (and its department) in a known organization.
 * - `usageOrganization(fx, options?)`: `fx.organization()` (accounts, funds) + `knownScope` for it.
 * - `insertPriceBook(db, { currency, effectiveFrom?, prices })`: the currency's next book version with
 *   its prices (`{ unit, unitPrice, unitVersion?, resourceType?, resourceId? }`, default resource `*`).
 * - `pointUsage(overrides?)` / `intervalUsage(overrides?)`: emitter inputs with fresh usage ids.
 * - `usageEnvelope(event)`: the `EventEnvelope` the relay would publish for an emitter event.
 * - `ensureUsageStreams(nc, subjectPrefix)`: the three product streams, with the test's prefix.
 * - `UsagePublisher`: `publish(event | envelope, { msgId? })` one event to `<prefix>.<type>`; the msg id
 *   defaults to the event id like the relay (so JetStream dedupes within its window), `null` sends none;
 *   `publishAll(events, { concurrency?, msgId? })` many at once; `publishRaw(subject, body)` any bytes.
 * - `waitFor(what, probe, timeoutMs?)`: polls until `probe` returns something other than undefined.
 */
import { randomUUID } from 'node:crypto';
import { eventEnvelopeSchema, parseEvent, prefixSubject, streamDeclarations, USAGE_PRODUCTS, type EventEnvelope } from '@aifactory/contracts';
import { ensureStreams, type OutboxEventInput, type Queryable } from '@aifactory/events';
import { UsageEvents, type IntervalUsage, type PointUsage, type UsageScope } from '@aifactory/usage-emitter';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { openOrganizationAccountsIn } from '../src/data/accounts.js';
import type { BillingFixture } from './billing-fixture.js';

export const USAGE = {
  gpuaas: new UsageEvents('gpuaas'),
  appplatform: new UsageEvents('appplatform'),
  tokenfactory: new UsageEvents('tokenfactory'),
} as const;

/** A scope billing knows: the emitter's scope and the organization's billing currency. */
export interface KnownScope extends UsageScope {
  currency: string;
}

/** A random currency code (the schema only asks for three capitals), so price books of one test never price another's usage. */
export function uniqueCurrency(): string {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  let code = '';
  for (let i = 0; i < 3; i += 1) code += letters[Math.floor(Math.random() * letters.length)];
  // USD, EUR and the like stay the fixtures' usual currencies; a random one must not collide with them.
  return ['USD', 'EUR', 'CHF', 'GBP', 'JPY'].includes(code) ? uniqueCurrency() : code;
}

/**
 * Inserts the organization (if missing) with its funds and accounts, a
 * department and a project as the hierarchy projection would from iam's
 * events, so usage for them is known. Usage is priced in the funds row's
 * currency: an organization opened before keeps its own.
 */
export async function knownScope(
  db: Queryable,
  options: { organizationId?: string; departmentId?: string; projectId?: string; currency?: string; actor?: UsageScope['actor'] } = {},
): Promise<KnownScope> {
  const organizationId = options.organizationId ?? randomUUID();
  const currency = options.currency ?? 'USD';
  await db.query(
    `INSERT INTO organizations (id, slug, name, billing_currency, status, version)
     VALUES ($1, $2, 'Usage test', $3, 'active', 1) ON CONFLICT (id) DO NOTHING`,
    [organizationId, `org-${organizationId.slice(0, 8)}`, currency],
  );
  await openOrganizationAccountsIn(db, organizationId, currency);
  const { rows } = await db.query<{ currency: string }>('SELECT currency FROM organization_funds WHERE organization_id = $1', [organizationId]);
  const scope = { organizationId, currency: rows[0]!.currency.trim(), actor: options.actor ?? { type: 'service_account' as const, id: 'sa-usage-test' } };
  const project = await knownProject(db, scope, options);
  return { ...scope, departmentId: project.departmentId, projectId: project.projectId };
}

/** One more project (in a new department unless one is named) of an organization `knownScope` made known. */
export async function knownProject(
  db: Queryable,
  scope: { organizationId: string },
  options: { departmentId?: string; projectId?: string } = {},
): Promise<{ departmentId: string; projectId: string }> {
  const departmentId = options.departmentId ?? randomUUID();
  const projectId = options.projectId ?? randomUUID();
  await db.query(
    `INSERT INTO departments (id, organization_id, name, status, version) VALUES ($1, $2, 'Usage test', 'active', 1)
     ON CONFLICT (id) DO NOTHING`,
    [departmentId, scope.organizationId],
  );
  await db.query(
    `INSERT INTO projects (id, organization_id, department_id, name, status, version) VALUES ($1, $2, $3, 'Usage test', 'active', 1)
     ON CONFLICT (id) DO NOTHING`,
    [projectId, scope.organizationId, departmentId],
  );
  return { departmentId, projectId };
}

/** An organization with its accounts and funds (`BillingFixture.organization`) whose usage billing knows. */
export async function usageOrganization(
  fx: BillingFixture,
  options: { currency?: string; paid?: bigint; promotional?: bigint } = {},
): Promise<KnownScope> {
  const currency = options.currency ?? 'USD';
  const opened = await fx.organization({ ...options, currency });
  return knownScope(fx.admin, { ...opened, currency });
}

export interface TestPrice {
  unit: string;
  /** Minor units per unit, a decimal string with up to 12 places. */
  unitPrice: string;
  unitVersion?: number;
  resourceType?: string;
  resourceId?: string;
}

/**
 * The currency's next price book, effective from `effectiveFrom` (default:
 * the epoch, so it prices all usage until a later book), written straight
 * into the tables: the domain refuses a start in the past, tests need one.
 */
export async function insertPriceBook(
  db: Queryable,
  book: { currency: string; effectiveFrom?: Date; prices: readonly TestPrice[] },
): Promise<{ id: string; version: number }> {
  const { rows } = await db.query<{ id: string; version: number }>(
    `INSERT INTO price_books (version, currency, effective_from, description, actor)
     SELECT COALESCE(max(version), 0) + 1, $1, $2, 'usage test prices', '{"type":"user","id":"usage-test"}'::jsonb
       FROM price_books WHERE currency = $1
     RETURNING id, version`,
    [book.currency, book.effectiveFrom ?? new Date(0)],
  );
  const created = rows[0]!;
  await db.query(
    `INSERT INTO price_book_prices (price_book_id, unit_id, unit_version, resource_type, resource_id, unit_price)
     SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::numeric[])`,
    [
      created.id,
      book.prices.map((p) => p.unit),
      book.prices.map((p) => p.unitVersion ?? 1),
      book.prices.map((p) => p.resourceType ?? '*'),
      book.prices.map((p) => p.resourceId ?? '*'),
      book.prices.map((p) => p.unitPrice),
    ],
  );
  return created;
}

/** A Token Factory point usage: 1 output token of `model`/`llama` now, with a fresh usage id. */
export function pointUsage(overrides: Partial<PointUsage> = {}): PointUsage {
  return {
    usageId: randomUUID(),
    resourceType: 'model',
    resourceId: 'llama',
    unit: 'token_output',
    unitVersion: 1,
    quantity: 1n,
    occurredAt: new Date(),
    ...overrides,
  };
}

/** A GPUaaS interval: one GPU (`gpu_allocation`/`alloc-<id>`) opened now, with a fresh usage id. */
export function intervalUsage(overrides: Partial<IntervalUsage> = {}): IntervalUsage {
  const usageId = overrides.usageId ?? randomUUID();
  return {
    usageId,
    resourceType: 'gpu_allocation',
    resourceId: `alloc-${usageId.slice(0, 8)}`,
    unit: 'gpu_hour',
    unitVersion: 1,
    openedAt: new Date(),
    ...overrides,
  };
}

/** The envelope the outbox relay publishes for an emitter's event (checked against the contracts). */
export function usageEnvelope(event: OutboxEventInput): EventEnvelope {
  const parsed = parseEvent({ type: event.type, version: event.version, payload: event.payload as Record<string, unknown> });
  if (!parsed.ok) throw new Error(`not a usage event the contracts accept: ${event.type} (${parsed.reason}: ${parsed.issues.join('; ')})`);
  return eventEnvelopeSchema.parse({
    id: event.id ?? randomUUID(),
    type: event.type,
    version: event.version,
    occurredAt: (event.occurredAt ?? new Date()).toISOString(),
    correlationId: event.correlationId ?? `corr-${randomUUID()}`,
    traceparent: null,
    actor: event.actor,
    organizationId: event.organizationId ?? null,
    departmentId: event.departmentId ?? null,
    projectId: event.projectId ?? null,
    registryVersions: event.registryVersions ?? {},
    aggregateType: parsed.definition.aggregateType,
    aggregateId: event.aggregateId,
    aggregateVersion: event.aggregateVersion,
    payload: event.payload,
  });
}

/** Creates (or updates) the GPUAAS, APPPLATFORM and TOKENFACTORY streams under the test's prefix. */
export async function ensureUsageStreams(nc: NatsConnection, subjectPrefix: string): Promise<void> {
  const families = new Set(USAGE_PRODUCTS.map((product) => prefixSubject(`${product}.>`, subjectPrefix)));
  const declarations = streamDeclarations({ subjectPrefix }).filter((stream) => stream.subjects.some((subject) => families.has(subject)));
  await ensureStreams(await jetstreamManager(nc), declarations);
}

export interface PublishOptions {
  /** The JetStream msg id: the event id by default (as the relay sends it), `null` for none. */
  msgId?: string | null;
}

/** Publishes usage as products' relays do: the envelope as JSON on `<prefix>.<type>`. */
export class UsagePublisher {
  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly subjectPrefix: string,
  ) {
    this.js = jetstream(nc);
  }

  async publish(event: OutboxEventInput | EventEnvelope, options: PublishOptions = {}): Promise<EventEnvelope> {
    const envelope = isEnvelope(event) ? event : usageEnvelope(event);
    const msgId = options.msgId === undefined ? envelope.id : options.msgId;
    await this.js.publish(prefixSubject(envelope.type, this.subjectPrefix), JSON.stringify(envelope), msgId === null ? {} : { msgID: msgId });
    return envelope;
  }

  /** Publishes every event, `concurrency` (default 200) in flight at a time; resolves once JetStream stored them all. */
  async publishAll(
    events: readonly (OutboxEventInput | EventEnvelope)[],
    options: PublishOptions & { concurrency?: number } = {},
  ): Promise<EventEnvelope[]> {
    const published: EventEnvelope[] = new Array(events.length);
    let next = 0;
    const worker = async () => {
      while (next < events.length) {
        const index = next++;
        published[index] = await this.publish(events[index]!, options);
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 200, events.length) }, worker));
    return published;
  }

  /** Publishes raw bytes on `<prefix>.<subject>` (a body that is not JSON, or not an envelope). */
  async publishRaw(subject: string, body: string): Promise<void> {
    await this.js.publish(prefixSubject(subject, this.subjectPrefix), body);
  }
}

function isEnvelope(event: OutboxEventInput | EventEnvelope): event is EventEnvelope {
  return 'aggregateType' in event && typeof (event as EventEnvelope).aggregateType === 'string';
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
