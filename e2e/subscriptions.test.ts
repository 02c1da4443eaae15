import { randomUUID } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { webSocketWithHeaders } from '@aifactory/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { organizationUpdatedV1, prefixSubject, streamDeclarations, type EventEnvelope } from '@aifactory/contracts';
import type { SeedResult } from '@aifactory/devstack';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const SUBSCRIPTION = 'subscription Watch($id: ID!) { organizationUpdated(id: $id) { id name account { currency } } }';
const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

interface Received {
  results: unknown[];
  /** The client's socket, to stop reading from it. */
  socket(): WebSocket;
  closed: Promise<{ code: number; reason: string }>;
  client: Client;
  done: Promise<void>;
  /** What the stream's error sink got: the refusal's GraphQL errors for a subscription refused at subscribe. */
  failure(): unknown;
}

function wsUrl(t: TestPlatform): string {
  return `${t.platform.gatewayUrl.replace('http', 'ws')}/graphql`;
}

/** A graphql-ws client whose upgrade request carries these headers, as Pomerium's would. */
function subscribe(
  t: TestPlatform,
  headers: Record<string, string>,
  variables: Record<string, unknown>,
  query = SUBSCRIPTION,
  connectionParams?: Record<string, unknown>,
): Received {
  let closedWith: (value: { code: number; reason: string }) => void = () => undefined;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (closedWith = resolve));
  let created: WebSocket | undefined;
  const client = createClient({
    url: wsUrl(t),
    webSocketImpl: webSocketWithHeaders(headers, (socket) => (created = socket)),
    retryAttempts: 0,
    lazy: false,
    ...(connectionParams ? { connectionParams } : {}),
    on: { closed: (event) => closedWith({ code: (event as { code: number }).code, reason: String((event as { reason: unknown }).reason) }) },
  });
  const results: unknown[] = [];
  let failure: unknown;
  const done = new Promise<void>((resolve) => {
    client.subscribe(
      { query, variables },
      {
        next: (value) => void results.push(value),
        error: (error) => {
          failure = error;
          resolve();
        },
        complete: () => resolve(),
      },
    );
  });
  const socket = () => {
    if (!created) throw new Error('not connected yet');
    return created;
  };
  return { results, socket, closed, client, done, failure: () => failure };
}

describe('subscriptions through the gateway', () => {
  let t: TestPlatform;
  let seeded: SeedResult;
  let nc: NatsConnection;

  const publish = async (organizationId: string, name: string, version: number) => {
    const envelope: EventEnvelope = {
      id: randomUUID(),
      type: organizationUpdatedV1.type,
      version: 1,
      occurredAt: new Date().toISOString(),
      correlationId: `sub-test-${version}`,
      traceparent: null,
      actor: { type: 'user', id: 'admin-1' },
      organizationId,
      departmentId: null,
      projectId: null,
      registryVersions: {},
      aggregateType: 'organization',
      aggregateId: organizationId,
      aggregateVersion: version,
      payload: { id: organizationId, slug: 'demo', name, billingCurrency: 'USD', status: 'active' },
    };
    await jetstream(nc).publish(prefixSubject(organizationUpdatedV1.subject, t.eventSubjectPrefix), JSON.stringify(envelope), { msgID: envelope.id });
  };

  beforeAll(async () => {
    nc = await connect({ servers: NATS_URL });
    // The platform's subgraphs create its (prefixed) streams at start.
    t = await startTestPlatform({ gatewayOverrides: { SUBSCRIPTION_MAX_PENDING_EVENTS: '3' } });
    seeded = await t.seed();
  });
  afterAll(async () => {
    await t?.close();
    await nc?.drain();
  });

  const admin = async () => ({ 'x-pomerium-jwt-assertion': await t.adminAssertion() });

  it('streams a rename made through the gateway, published by iam through its outbox, with the field billing resolves', async () => {
    const sub = subscribe(t, await admin(), { id: seeded.organizationId });
    await eventually(() => expect(t.platform.gateway.feeds.listeners).toBe(1), 5_000);
    const renamed = await t.graphql({
      query: 'mutation { renameOrganization(id: "' + seeded.organizationId + '", name: "Renamed End To End") { id } }',
      assertion: await t.adminAssertion(),
    });
    expect(renamed.status).toBe(200);
    await eventually(() => expect(sub.results).toHaveLength(1), 10_000);
    expect(sub.results[0]).toEqual({
      data: { organizationUpdated: { id: seeded.organizationId, name: 'Renamed End To End', account: { currency: 'USD' } } },
    });
    sub.client.dispose();
    await eventually(() => expect(t.platform.gateway.feeds.listeners).toBe(0), 5_000);
  });

  it('streams the changed organization with the field billing resolves', async () => {
    const sub = subscribe(t, await admin(), { id: seeded.organizationId });
    await eventually(() => expect(t.platform.gateway.feeds.listeners).toBe(1), 5_000);
    await publish(seeded.organizationId, 'Renamed Live', 2);
    await eventually(() => expect(sub.results).toHaveLength(1), 5_000);
    expect(sub.results[0]).toEqual({ data: { organizationUpdated: { id: seeded.organizationId, name: 'Renamed Live', account: { currency: 'USD' } } } });
    sub.client.dispose();
  });

  it('shares one JetStream consumer among 100 subscribers to one organization', async () => {
    const headers = await admin();
    const jsm = await jetstreamManager(nc);
    const stream = streamDeclarations({ subjectPrefix: t.eventSubjectPrefix }).find((declaration) => declaration.name.endsWith('PLATFORM_IAM'));
    const consumerNames = async () => new Set((await jsm.consumers.list(stream?.name ?? '').next()).map((info) => info.name));
    const before = await consumerNames();
    const subs = Array.from({ length: 100 }, () => subscribe(t, headers, { id: seeded.organizationId }));
    await eventually(() => expect(t.platform.gateway.feeds.listeners).toBe(100), 10_000);
    expect(t.platform.gateway.feeds.activeSubjects).toBe(1);
    await publish(seeded.organizationId, 'Fan Out', 3);
    await eventually(() => expect(subs.every((sub) => sub.results.length === 1)).toBe(true), 15_000);
    const created = [...(await consumerNames())].filter((name) => !before.has(name));
    expect(created).toHaveLength(1);
    const metrics = await (await fetch(`${t.platform.gatewayUrl}/metrics`)).text();
    expect(metrics).toMatch(/aif_subscriptions_active\{[^}]*\} 100/);
    expect(metrics).toMatch(/aif_subscription_feeds\{[^}]*\} 1/);
    for (const sub of subs) sub.client.dispose();
  }, 60_000);

  it('sends nothing to a principal the authorization hook refuses, and ends the stream with its code', async () => {
    // No grant in the organization: refused at subscribe, before it ever listens.
    const stranger = subscribe(t, { 'x-pomerium-jwt-assertion': await t.assertion({ subject: 'member-1' }) }, { id: seeded.organizationId });
    await stranger.done;
    expect(stranger.results).toEqual([]);
    expect(stranger.failure()).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'AUTH_FORBIDDEN' }) })]);
    expect(t.platform.gateway.feeds.listeners).toBe(0);
    stranger.client.dispose();

    // A viewer of the organization is served until the membership is removed; then the stream ends with the code.
    const viewer = await t.assertion({ subject: 'member-2', email: 'member-2@example.com' });
    const me = await t.graphql({ query: '{ me { id } }', assertion: viewer });
    expect(me.body.data.me.id).toEqual(expect.any(String));
    const granted = await t.graphql({
      query: 'mutation G($u: ID!, $o: ID!) { grantRole(userId: $u, level: ORGANIZATION, nodeId: $o, role: "viewer") { id } }',
      variables: { u: me.body.data.me.id, o: seeded.organizationId },
      assertion: await t.adminAssertion(),
    });
    expect(granted.body.errors).toBeUndefined();
    await eventually(async () => {
      const seen = await t.graphql({ query: 'query O($id: ID!) { organization(id: $id) { id } }', variables: { id: seeded.organizationId }, assertion: viewer });
      expect(seen.body.data.organization).toEqual({ id: seeded.organizationId });
    }, 5_000);
    const sub = subscribe(t, { 'x-pomerium-jwt-assertion': viewer }, { id: seeded.organizationId });
    await eventually(() => expect(t.platform.gateway.feeds.listeners).toBe(1), 5_000);
    await publish(seeded.organizationId, 'Seen By Viewer', 4);
    await eventually(() => expect(sub.results).toHaveLength(1), 5_000);
    const removed = await t.graphql({
      query: 'mutation R($id: ID!) { removeMembership(membershipId: $id) { id } }',
      variables: { id: granted.body.data.grantRole.id },
      assertion: await t.adminAssertion(),
    });
    expect(removed.body.errors).toBeUndefined();
    await sub.done;
    await eventually(() => expect(t.platform.gateway.feeds.listeners).toBe(0), 5_000);
    await publish(seeded.organizationId, 'Secret Name', 5);
    expect(JSON.stringify(sub.results)).not.toContain('Secret Name');
    expect(sub.results).toEqual([
      { data: { organizationUpdated: { id: seeded.organizationId, name: 'Seen By Viewer', account: { currency: 'USD' } } } },
      { errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'AUTH_FORBIDDEN' }) })] },
    ]);
    sub.client.dispose();
  });

  it('disconnects a subscriber whose credential expires, with the code', async () => {
    const expiring = await t.assertion({ subject: 'admin-short', groups: ['test-platform-admins'], expiresInSeconds: 2 });
    const sub = subscribe(t, { 'x-pomerium-jwt-assertion': expiring }, { id: seeded.organizationId });
    const closed = await sub.closed;
    expect(closed).toEqual({ code: 4401, reason: 'AUTH_CREDENTIAL_EXPIRED' });
  });

  it('checks a credential sent again in connection_init: another person is refused, the same person passes', async () => {
    const headers = await admin();
    const other = await t.assertion({ subject: 'someone-else', groups: ['test-platform-admins'] });
    const refused = subscribe(t, headers, { id: seeded.organizationId }, SUBSCRIPTION, { 'x-pomerium-jwt-assertion': other });
    expect((await refused.closed).code).toBe(4403);
    const same = subscribe(t, headers, { id: seeded.organizationId }, SUBSCRIPTION, { 'x-pomerium-jwt-assertion': await t.adminAssertion() });
    await eventually(() => expect(t.platform.gateway.feeds.listeners).toBe(1), 5_000);
    same.client.dispose();
    await eventually(() => expect(t.platform.gateway.feeds.listeners).toBe(0), 5_000);
  });

  it('refuses a connection without a credential or from a foreign Origin', async () => {
    const upgrade = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const socket = new WebSocket(wsUrl(t), 'graphql-transport-ws', { headers });
        socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        socket.on('open', () => resolve(101));
        socket.on('error', () => undefined);
      });
    expect(await upgrade({})).toBe(401);
    expect(await upgrade({ ...(await admin()), origin: 'https://evil.example.com' })).toBe(403);
  });

  it('closes a subscriber that stops reading, with the code, instead of buffering without bound', async () => {
    const sub = subscribe(t, await admin(), { id: seeded.organizationId });
    await eventually(() => expect(t.platform.gateway.feeds.listeners).toBe(1), 5_000);
    // Stop reading: the gateway's writes back up in the socket and events queue for this subscriber.
    const tcp = (sub.socket() as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause();
    const big = 'x'.repeat(200_000);
    for (let version = 10; version < 60; version += 1) await publish(seeded.organizationId, `${big}${version}`, version);
    await eventually(() => expect(t.logs.lines().some((line) => line.msg === 'subscriber too slow; closing')).toBe(true), 20_000);
    // Reading again, the client finds the close frame behind the data it left unread.
    tcp.resume();
    expect(await sub.closed).toEqual({ code: 4413, reason: 'SUBSCRIPTION_CLIENT_TOO_SLOW' });
  }, 60_000);
});
