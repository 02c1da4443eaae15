/**
 * Issue 16, Accounts and transfers: billing keeps its own read model of
 * iam's organizations, departments and projects from iam's events (never
 * iam's tables), and opens an organization's accounts in the currency its
 * `platform.iam.organization.created` event carries.
 */
import { randomUUID } from 'node:crypto';
import {
  DEPARTMENT_EVENTS,
  organizationCreatedV1,
  organizationUpdatedV1,
  prefixSubject,
  PROJECT_EVENTS,
  userChangedV1,
  type EventEnvelope,
} from '@aifactory/contracts';
import type { RunningConsumer } from '@aifactory/event-consumers';
import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { deleteEventStreams, TEST_NATS_URL, uniqueEventSubjectPrefix } from '@aifactory/testing';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { inTransaction } from '../src/data/transactions.js';
import { HIERARCHY_CONSUMER, startHierarchyProjection } from '../src/workers/hierarchy-projection.js';
import { startBillingFixture, testActor, type BillingFixture } from './billing-fixture.js';

const subjectPrefix = uniqueEventSubjectPrefix();
let fx: BillingFixture;
let nc: NatsConnection;
let js: JetStreamClient;
let projection: RunningConsumer;

beforeAll(async () => {
  fx = await startBillingFixture();
  nc = await connect({ servers: TEST_NATS_URL, name: 'billing-hierarchy-test' });
  js = jetstream(nc);
  projection = await startHierarchyProjection({
    nc,
    subjectPrefix,
    pool: fx.database.pool,
    schema: fx.database.schema,
    logger: createLogger({ service: 'billing-test', level: 'warn' }),
    metrics: new ServiceMetrics('billing-hierarchy-test'),
  });
}, 60_000);

afterAll(async () => {
  await projection?.stop();
  await nc?.close();
  await deleteEventStreams(subjectPrefix);
  await fx?.close();
});

interface EventDefinitionLike {
  type: string;
  version: number;
  subject: string;
  aggregateType: string;
}

/** Publishes one of iam's events as iam's relay does: the envelope as JSON, its id as the JetStream msg id. */
async function publish(
  definition: EventDefinitionLike,
  aggregateId: string,
  aggregateVersion: number,
  payload: Record<string, unknown>,
  options: { id?: string; msgId?: string } = {},
): Promise<EventEnvelope> {
  const envelope: EventEnvelope = {
    id: options.id ?? randomUUID(),
    type: definition.type,
    version: definition.version,
    occurredAt: new Date().toISOString(),
    correlationId: `corr-${randomUUID()}`,
    traceparent: null,
    actor: { type: 'user', id: 'iam-test' },
    organizationId: typeof payload.organizationId === 'string' ? payload.organizationId : definition.aggregateType === 'organization' ? aggregateId : null,
    departmentId: null,
    projectId: null,
    registryVersions: {},
    aggregateType: definition.aggregateType,
    aggregateId,
    aggregateVersion,
    payload,
  };
  await js.publish(prefixSubject(definition.subject, subjectPrefix), JSON.stringify(envelope), { msgID: options.msgId ?? envelope.id });
  return envelope;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function processed(eventId: string): Promise<boolean> {
  const { rows } = await fx.admin.query('SELECT 1 FROM processed_events WHERE consumer = $1 AND event_id = $2', [HIERARCHY_CONSUMER, eventId]);
  return rows.length > 0;
}

const organization = (id: string, billingCurrency: string, name = 'Acme') => ({ id, slug: `org-${id.slice(0, 8)}`, name, billingCurrency, status: 'active' });

async function accountsOf(organizationId: string): Promise<{ kind: string; currency: string }[]> {
  const { rows } = await fx.admin.query<{ kind: string; currency: string }>(
    'SELECT kind::text AS kind, currency FROM accounts WHERE organization_id = $1 ORDER BY kind',
    [organizationId],
  );
  return rows;
}

describe("billing's read model of iam's hierarchy", () => {
  it('opens an organization’s three accounts, its funds row and the platform accounts in the currency organization.created carries', async () => {
    const organizationId = randomUUID();
    await publish(organizationCreatedV1, organizationId, 1, organization(organizationId, 'CHF'));

    const accounts = await waitFor('the organization’s accounts', async () => {
      const rows = await accountsOf(organizationId);
      return rows.length === 3 ? rows : undefined;
    });
    expect(accounts).toEqual([
      { kind: 'customer_balance', currency: 'CHF' },
      { kind: 'disputes_held', currency: 'CHF' },
      { kind: 'promotional_credit', currency: 'CHF' },
    ]);
    const funds = await fx.admin.query('SELECT currency, paid, promotional, reserved FROM organization_funds WHERE organization_id = $1', [organizationId]);
    expect(funds.rows).toEqual([{ currency: 'CHF', paid: '0', promotional: '0', reserved: '0' }]);
    const platform = await fx.admin.query<{ kind: string }>(
      "SELECT kind::text AS kind FROM accounts WHERE organization_id IS NULL AND currency = 'CHF' ORDER BY kind",
    );
    expect(platform.rows.map((row) => row.kind)).toEqual(['payment_clearing', 'promotions', 'refunds', 'revenue']);
    const known = await fx.admin.query('SELECT name, billing_currency, status, version FROM organizations WHERE id = $1', [organizationId]);
    expect(known.rows).toEqual([{ name: 'Acme', billing_currency: 'CHF', status: 'active', version: 1 }]);

    // The ledger takes money into the opened accounts at once.
    const [credit] = await inTransaction(fx.database.pool, async (tx) => [
      await fx.ledger.creditIn(tx, {
        postingId: `hierarchy-test:${organizationId}`,
        kind: 'admin_credit',
        organizationId,
        amount: 1_250n,
        to: 'customer_balance',
        from: 'payment_clearing',
        actor: testActor,
      }),
    ]);
    expect(credit!.posting.currency).toBe('CHF');
  });

  it('keeps the currency the organization was created in, and changes nothing when an event is delivered twice', async () => {
    const organizationId = randomUUID();
    const created = await publish(organizationCreatedV1, organizationId, 1, organization(organizationId, 'EUR'));
    // The same event again under another msg id, as a second relay would publish it: JetStream cannot drop it, the consumer must.
    await publish(organizationCreatedV1, organizationId, 1, organization(organizationId, 'EUR'), { id: created.id, msgId: randomUUID() });
    // An update that claims another currency: billing bills in the one the organization was created with.
    const renamed = await publish(organizationUpdatedV1, organizationId, 2, organization(organizationId, 'USD', 'Acme Renamed'));
    await waitFor('the update', async () => ((await processed(renamed.id)) ? true : undefined));

    expect(await accountsOf(organizationId)).toHaveLength(3);
    expect(new Set((await accountsOf(organizationId)).map((account) => account.currency))).toEqual(new Set(['EUR']));
    const funds = await fx.admin.query('SELECT currency FROM organization_funds WHERE organization_id = $1', [organizationId]);
    expect(funds.rows).toEqual([{ currency: 'EUR' }]);
    const known = await fx.admin.query('SELECT name, version FROM organizations WHERE id = $1', [organizationId]);
    expect(known.rows).toEqual([{ name: 'Acme Renamed', version: 2 }]);
    const events = await fx.admin.query('SELECT count(*)::int AS n FROM processed_events WHERE consumer = $1 AND aggregate_id = $2', [
      HIERARCHY_CONSUMER,
      organizationId,
    ]);
    expect(events.rows[0].n).toBe(2);
  });

  it('keeps departments and projects at their newest version, whatever order their events arrive in', async () => {
    const organizationId = randomUUID();
    const departmentId = randomUUID();
    const projectId = randomUUID();
    const department = (name: string, status: string) => ({ id: departmentId, organizationId, slug: 'ml', name, status });
    const project = (name: string, status: string) => ({ id: projectId, organizationId, departmentId, slug: 'inference', name, status });
    await publish(DEPARTMENT_EVENTS.created, departmentId, 1, department('ML', 'active'));
    await publish(PROJECT_EVENTS.created, projectId, 1, project('Inference', 'active'));
    const archived = await publish(PROJECT_EVENTS.archived, projectId, 3, project('Inference v2', 'archived'));
    // Version 2 arrives after version 3: it is older, and dropped.
    const late = await publish(PROJECT_EVENTS.updated, projectId, 2, project('Inference (renamed)', 'active'));
    const renamed = await publish(DEPARTMENT_EVENTS.updated, departmentId, 2, department('Machine Learning', 'active'));
    await waitFor('every event', async () => ((await processed(archived.id)) && (await processed(late.id)) && (await processed(renamed.id)) ? true : undefined));

    const projects = await fx.admin.query('SELECT organization_id, department_id, name, status, version FROM projects WHERE id = $1', [projectId]);
    expect(projects.rows).toEqual([{ organization_id: organizationId, department_id: departmentId, name: 'Inference v2', status: 'archived', version: 3 }]);
    const departments = await fx.admin.query('SELECT organization_id, name, status, version FROM departments WHERE id = $1', [departmentId]);
    expect(departments.rows).toEqual([{ organization_id: organizationId, name: 'Machine Learning', status: 'active', version: 2 }]);
  });

  it("passes over the rest of iam's family without a dead letter", async () => {
    const userId = randomUUID();
    const user = await publish(userChangedV1, userId, 1, { id: userId, email: 'someone@example.com', name: 'Someone', platformRoles: [] });
    await waitFor('the user event', async () => ((await processed(user.id)) ? true : undefined));
    const dead = await fx.admin.query('SELECT count(*)::int AS n FROM dead_letters WHERE consumer = $1', [HIERARCHY_CONSUMER]);
    expect(dead.rows[0].n).toBe(0);
    const created = await fx.admin.query('SELECT count(*)::int AS n FROM organizations WHERE id = $1', [userId]);
    expect(created.rows[0].n).toBe(0);
  });
});
