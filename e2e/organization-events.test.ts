import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { EVENT_HEADERS, organizationCreatedV1, organizationUpdatedV1, prefixSubject, streamDeclarations, type EventEnvelope } from '@aifactory/contracts';
import type { SeedResult } from '@aifactory/devstack';
import { TEST_NATS_URL } from '@aifactory/testing';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const RENAME = 'mutation Rename($id: ID!, $name: String!) { renameOrganization(id: $id, name: $name) { id name } }';
/** The relay is woken by NOTIFY at commit; its 2 s poll is the fallback this leaves room for. */
const PUBLISHED_WITHIN_MS = 10_000;

interface Delivered {
  envelope: EventEnvelope;
  correlationHeader: string | undefined;
}

describe('organization events', () => {
  let t: TestPlatform;
  let seeded: SeedResult;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let admin: pg.Client;
  let stream: string;
  /** The platform admin's IAM user id: events name users by it, not by their identity provider's subject. */
  let adminUserId: string;

  beforeAll(async () => {
    t = await startTestPlatform();
    seeded = await t.seed();
    nc = await connect({ servers: TEST_NATS_URL, name: 'organization-events-test' });
    jsm = await jetstreamManager(nc);
    admin = await t.db.admin();
    stream = streamDeclarations({ subjectPrefix: t.eventSubjectPrefix }).find((declaration) => declaration.name.endsWith('_PLATFORM_IAM'))!.name;
    adminUserId = (await t.graphql({ query: '{ me { id } }', assertion: await t.adminAssertion() })).body.data.me.id;
  });
  afterAll(async () => {
    await nc?.close();
    await t?.close();
  });

  const subjectOf = (subject: string) => prefixSubject(subject, t.eventSubjectPrefix);

  /** Every message now in this platform's PLATFORM_IAM stream on the subject, read once with an ordered consumer. */
  async function delivered(subject: string): Promise<Delivered[]> {
    const info = await jsm.streams.info(stream, { subjects_filter: subject });
    const count = info.state.subjects?.[subject] ?? 0;
    if (count === 0) return [];
    const consumer = await jetstream(nc).consumers.get(stream, { filter_subjects: subject });
    const messages: Delivered[] = [];
    while (messages.length < count) {
      const batch = await consumer.fetch({ max_messages: count - messages.length, expires: 2_000 });
      let received = 0;
      for await (const message of batch) {
        received += 1;
        messages.push({ envelope: message.json<EventEnvelope>(), correlationHeader: message.headers?.get(EVENT_HEADERS.correlationId) });
      }
      if (received === 0) break;
    }
    return messages;
  }

  async function outboxRows(where: string, values: unknown[]) {
    const { rows } = await admin.query<{ id: string; status: string; aggregate_version: number; subject: string }>(
      `SELECT id, status::text AS status, aggregate_version, subject FROM iam.outbox_events WHERE ${where} ORDER BY aggregate_version`,
      values,
    );
    return rows;
  }

  async function rename(id: string, name: string, correlationId = `rename-${randomUUID()}`) {
    const res = await t.graphql({
      query: RENAME,
      variables: { id, name },
      assertion: await t.adminAssertion(),
      headers: { 'x-correlation-id': correlationId },
    });
    return { ...res, correlationId };
  }

  it('publishes the seeded organization once, at version 1, under the platform prefix', async () => {
    const subject = subjectOf(organizationCreatedV1.subject);
    await eventually(async () => expect(await delivered(subject)).toHaveLength(1), PUBLISHED_WITHIN_MS);
    const [created] = await delivered(subject);
    expect(created?.envelope).toMatchObject({
      type: 'platform.iam.organization.created',
      aggregateType: 'organization',
      aggregateId: seeded.organizationId,
      aggregateVersion: 1,
      actor: { type: 'system', id: 'iam-seed' },
      payload: { id: seeded.organizationId, slug: 'demo', name: 'Demo Organization', billingCurrency: 'USD', status: 'active' },
    });
  });

  it('announces a rename through the gateway exactly once, with the new name, version 2 and the request correlation id', async () => {
    const renamed = await rename(seeded.organizationId, 'Demo Renamed Once');
    expect(renamed.body).toEqual({ data: { renameOrganization: { id: seeded.organizationId, name: 'Demo Renamed Once' } } });

    const rows = () => outboxRows(`type = $1 AND correlation_id = $2`, [organizationUpdatedV1.type, renamed.correlationId]);
    await eventually(async () => expect((await rows()).map((row) => row.status)).toEqual(['published']), PUBLISHED_WITHIN_MS);
    expect((await rows())[0]).toMatchObject({ aggregate_version: 2, subject: subjectOf(organizationUpdatedV1.subject) });

    const messages = await delivered(subjectOf(organizationUpdatedV1.subject));
    expect(messages).toHaveLength(1);
    expect(messages[0]?.correlationHeader).toBe(renamed.correlationId);
    expect(messages[0]?.envelope).toMatchObject({
      id: (await rows())[0]?.id,
      type: 'platform.iam.organization.updated',
      version: 1,
      correlationId: renamed.correlationId,
      actor: { type: 'user', id: adminUserId },
      organizationId: seeded.organizationId,
      aggregateType: 'organization',
      aggregateId: seeded.organizationId,
      aggregateVersion: 2,
      payload: { id: seeded.organizationId, slug: 'demo', name: 'Demo Renamed Once', billingCurrency: 'USD', status: 'active' },
    });
  });

  it('raises the version by one with every rename', async () => {
    const before = await outboxRows(`aggregate_id = $1`, [seeded.organizationId]);
    const last = before.at(-1)!.aggregate_version;

    const first = await rename(seeded.organizationId, 'Demo First');
    const second = await rename(seeded.organizationId, 'Demo Second');
    expect([first.body.errors, second.body.errors]).toEqual([undefined, undefined]);

    const versions = async (correlationId: string) =>
      (await outboxRows(`type = $1 AND correlation_id = $2 AND status = 'published'`, [organizationUpdatedV1.type, correlationId])).map(
        (row) => row.aggregate_version,
      );
    await eventually(async () => expect([await versions(first.correlationId), await versions(second.correlationId)]).toEqual([[last + 1], [last + 2]]), PUBLISHED_WITHIN_MS);
    const published = (await delivered(subjectOf(organizationUpdatedV1.subject))).map(({ envelope }) => [envelope.aggregateVersion, envelope.payload.name]);
    expect(published.slice(-2)).toEqual([
      [last + 1, 'Demo First'],
      [last + 2, 'Demo Second'],
    ]);
  });

  it('writes no event for a rename that fails: an unknown organization is NOT_FOUND', async () => {
    const unknown = randomUUID();
    const failed = await rename(unknown, 'Nobody');
    expect(failed.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(await outboxRows(`aggregate_id = $1 OR correlation_id = $2`, [unknown, failed.correlationId])).toEqual([]);
  });

  it('writes no event for a rename to the name the organization already has', async () => {
    const current = await rename(seeded.organizationId, 'Demo Unchanged');
    // The rename's domain event and its audit event.
    await eventually(
      async () =>
        expect((await outboxRows(`correlation_id = $1 AND status = 'published'`, [current.correlationId])).map((row) => row.subject).sort()).toEqual(
          [subjectOf('platform.audit.iam.organization.update'), subjectOf(organizationUpdatedV1.subject)].sort(),
        ),
      PUBLISHED_WITHIN_MS,
    );

    const same = await rename(seeded.organizationId, 'Demo Unchanged');
    expect(same.body).toEqual({ data: { renameOrganization: { id: seeded.organizationId, name: 'Demo Unchanged' } } });
    expect(await outboxRows(`correlation_id = $1`, [same.correlationId])).toEqual([]);
  });

  it("shows the relay's outbox series on the subgraph's /metrics", async () => {
    const metricsUrl = t.platform.subgraphUrls.iam!.replace(/\/graphql$/, '/metrics');
    /** The sample of a series for the iam schema (the registry adds its service label too). */
    const sample = (body: string, name: string) => new RegExp(`^${name}\\{[^}]*schema="iam"[^}]*\\} (\\S+)$`, 'm').exec(body)?.[1];
    await eventually(async () => {
      const body = await (await fetch(metricsUrl)).text();
      expect(sample(body, 'aif_outbox_pending_events')).toBe('0');
      expect(sample(body, 'aif_outbox_failed_events')).toBe('0');
      expect(sample(body, 'aif_outbox_oldest_pending_age_seconds')).toBe('0');
      expect(Number(sample(body, 'aif_outbox_published_total'))).toBeGreaterThanOrEqual(1);
    }, PUBLISHED_WITHIN_MS);
  });
});
