/**
 * Issue 17, usage to money end to end: products' usage events on JetStream
 * (as their outbox relays publish them) are ingested by the running billing
 * service, rated by its BullMQ worker at the demo price book and posted to
 * the ledger; the organization's usage, rated lines and refusals are read
 * through the gateway, and the CSV export streams through `/api/billing`.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { eventEnvelopeSchema, parseEvent, prefixSubject, type EventEnvelope } from '@aifactory/contracts';
import { runDevSeed, type SeedResult } from '@aifactory/devstack';
import type { OutboxEventInput } from '@aifactory/events';
import { TEST_NATS_URL } from '@aifactory/testing';
import { UsageEvents, type UsageScope } from '@aifactory/usage-emitter';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const USAGE = `query U($id: ID!, $after: String) {
  organization(id: $id) {
    balance { paid }
    usage(first: 100, after: $after) { edges { node { id kind status } } pageInfo { hasNextPage endCursor } }
    ratedUsage(first: 100, filter: { product: GPUAAS }) { edges { node { kind quantity windowIndex amount priceBookVersion apiKeyId } } }
    rejectedUsage(first: 10) { edges { node { eventId reason source } } }
  }
}`;

/** The demo price book (billing's seed): 0.00015 minor units per output token (150 millionths), 250 per GPU hour. */
const TOKEN_PRICE_MILLIONTHS = 150n;
const GPU_HOUR = 250n;

describe('usage to money through the running platform', () => {
  let t: TestPlatform;
  let admin: pg.Client;
  let seeded: SeedResult;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let scope: UsageScope;

  const envelopeOf = (event: OutboxEventInput): EventEnvelope => {
    const parsed = parseEvent({ type: event.type, version: event.version, payload: event.payload as Record<string, unknown> });
    if (!parsed.ok) throw new Error(`not a usage event: ${parsed.reason}`);
    return eventEnvelopeSchema.parse({
      id: event.id,
      type: event.type,
      version: event.version,
      occurredAt: (event.occurredAt ?? new Date()).toISOString(),
      correlationId: event.correlationId ?? `e2e-usage-${randomUUID()}`,
      traceparent: null,
      actor: event.actor,
      organizationId: event.organizationId ?? null,
      departmentId: event.departmentId ?? null,
      projectId: event.projectId ?? null,
      registryVersions: {},
      aggregateType: parsed.definition.aggregateType,
      aggregateId: event.aggregateId,
      aggregateVersion: event.aggregateVersion,
      payload: event.payload,
    });
  };
  // No msg id: billing's own idempotency is what keeps a resend from counting twice.
  const publish = async (envelope: EventEnvelope) => {
    await js.publish(prefixSubject(envelope.type, t.eventSubjectPrefix), JSON.stringify(envelope));
  };
  const paid = async () =>
    BigInt((await admin.query('SELECT paid::text FROM billing.organization_funds WHERE organization_id = $1', [seeded.organizationId])).rows[0].paid);

  beforeAll(async () => {
    t = await startTestPlatform();
    seeded = await runDevSeed(t.db.layout, { eventSubjectPrefix: t.eventSubjectPrefix });
    admin = await t.db.admin();
    nc = await connect({ servers: TEST_NATS_URL });
    js = jetstream(nc);
    scope = {
      organizationId: seeded.organizationId,
      departmentId: seeded.departmentId,
      projectId: seeded.projectId,
      actor: { type: 'service_account', id: 'e2e-usage-sa' },
      apiKeyId: 'e2e-usage-key',
    };
    // Usage waits until billing learned the project from iam's events.
    await eventually(async () => {
      const { rowCount } = await admin.query('SELECT 1 FROM billing.projects WHERE id = $1', [seeded.projectId]);
      expect(rowCount).toBe(1);
    }, 30_000);
  }, 120_000);

  afterAll(async () => {
    await nc?.drain();
    await admin?.end();
    await t?.close();
  });

  it('ingests, rates and posts point and interval usage once, and reads it back through the gateway', async () => {
    const before = await paid();
    const { rows } = await admin.query<{ effective_from: Date }>("SELECT effective_from FROM billing.price_books WHERE currency = $1 ORDER BY version DESC LIMIT 1", [
      seeded.billingCurrency,
    ]);
    const priced = new Date(Math.max(rows[0]!.effective_from.getTime() + 1_000, Date.now()));
    const tokenfactory = new UsageEvents('tokenfactory');
    const points = Array.from({ length: 40 }, (_, i) =>
      envelopeOf(
        tokenfactory.recorded(scope, {
          usageId: randomUUID(),
          resourceType: 'model',
          resourceId: 'llama-3-70b',
          unit: 'token_output',
          unitVersion: 1,
          quantity: BigInt(100_000 + i),
          occurredAt: priced,
        }),
      ),
    );
    // A 1000-GPU allocation held for two seconds (billing never bills time that has not happened yet, so wait for it).
    const gpuaas = new UsageEvents('gpuaas');
    const interval = { usageId: randomUUID(), resourceType: 'gpu_allocation', resourceId: 'alloc-e2e', unit: 'gpu_hour', unitVersion: 1, openedAt: priced, quantityPerSecond: 1_000n };
    const opened = envelopeOf(gpuaas.opened(scope, interval));
    const closed = envelopeOf(gpuaas.closed(scope, interval, new Date(priced.getTime() + 2_000)));
    while (Date.now() < priced.getTime() + 2_500) await new Promise((resolve) => setTimeout(resolve, 100));
    const unknownUnit = envelopeOf(
      tokenfactory.recorded(scope, { usageId: randomUUID(), resourceType: 'model', resourceId: 'm', unit: 'token_unknown', unitVersion: 1, quantity: 5n, occurredAt: priced }),
    );
    // The closing first: it waits for its opening.
    for (const envelope of [closed, ...points, opened, unknownUnit, ...points.slice(0, 10)]) await publish(envelope);

    await eventually(async () => {
      const rated = await admin.query(
        `SELECT count(*)::int AS n FROM billing.usage_ratings r JOIN billing.usage_events e USING (event_id) WHERE e.organization_id = $1`,
        [seeded.organizationId],
      );
      expect(rated.rows[0].n).toBe(points.length + 2);
    }, 60_000);

    const tokens = points.reduce((sum, _, i) => sum + BigInt(100_000 + i), 0n);
    // Exact in millionths x 3600 of a minor unit: tokens at 0.00015, 2000 GPU-seconds at 250 a GPU hour; the
    // project's month posts the floor of the exact sum (its remainder chain).
    const exact = tokens * TOKEN_PRICE_MILLIONTHS * 3_600n + 2_000n * GPU_HOUR * 1_000_000n;
    expect(before - (await paid())).toBe(exact / 3_600_000_000n);

    const { status, body } = await t.graphql({ query: USAGE, variables: { id: seeded.organizationId }, assertion: await t.adminAssertion() });
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const organization = body.data.organization;
    expect(BigInt(organization.balance.paid)).toBe(await paid());
    const statuses = organization.usage.edges.map((edge: { node: { status: string } }) => edge.node.status);
    expect(statuses.filter((s: string) => s === 'ACCEPTED')).toHaveLength(points.length + 2);
    expect(organization.rejectedUsage.edges.map((edge: { node: { eventId: string; reason: string } }) => edge.node)).toEqual([
      expect.objectContaining({ eventId: unknownUnit.id, reason: 'unknown_unit' }),
    ]);
    expect(organization.ratedUsage.edges.map((edge: { node: unknown }) => edge.node)).toEqual([
      expect.objectContaining({ kind: 'WINDOW', quantity: '2000', windowIndex: 0, amount: '138.888888888888', apiKeyId: 'e2e-usage-key' }),
    ]);

    const metrics = await (await fetch(`${t.platform.subgraphUrls.billing!.replace(/\/graphql$/, '')}/metrics`)).text();
    expect(metrics).toMatch(/^aif_billing_usage_unrated_events\{[^}]*\} 0$/m);
    expect(metrics).toMatch(/^aif_billing_usage_ingested_total\{[^}]*outcome="accepted"[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^aif_billing_usage_ingest_lag_seconds_count\{[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^aif_billing_rating_lag_seconds_count\{[^}]*\} [1-9]/m);

    const csv = await fetch(`${t.platform.gatewayUrl}/api/billing/usage.csv?organizationId=${seeded.organizationId}`, {
      headers: { 'x-pomerium-jwt-assertion': await t.adminAssertion() },
    });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const records = (await csv.text()).trim().split('\r\n');
    expect(records[0]).toMatch(/^lineId,lineKey,kind,/);
    expect(records).toHaveLength(1 + points.length + 1);
  }, 120_000);
});
