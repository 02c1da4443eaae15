import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { buildSchema } from 'graphql';
import { createLogger } from '@aifactory/logging';
import { InternalTokenSigner } from '@aifactory/service-auth';
import type { Histogram } from '@aifactory/telemetry';
import { SubgraphSource, type GatewayContext } from '../src/subgraph-source.js';
import { startGraphQLRoute, type GraphQLRouteHarness } from './graphql-route-harness.js';

const schema = buildSchema('type Query { hello: String } type Mutation { touch: String }');
const noMetrics = { observe: () => undefined } as unknown as Histogram<'subgraph' | 'outcome'>;

/**
 * The gateway route in front of one subgraph source, as the executor would
 * call it: what the subgraph receives is what a mutation's Idempotency-Key
 * turns into on the way through.
 */
describe('forwarding the Idempotency-Key to subgraphs', () => {
  let upstream: Server;
  let route: GraphQLRouteHarness;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: { touch: 'ok' } }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const source = new SubgraphSource({
      name: 'billing',
      url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/graphql`,
      signer: new InternalTokenSigner({ issuer: 'gateway', key: { kid: 'test', privateKey: generateKeyPairSync('ed25519').privateKey } }),
      timeoutMs: 2_000,
      fetchDuration: noMetrics,
    });

    route = await startGraphQLRoute(
      schema,
      async (requestContext) => {
        // What the query planner hands a data source, less what SubgraphSource does not read.
        const response = await source.process({
          request: { query: requestContext.source, operationName: requestContext.operationName ?? undefined },
          context: requestContext.context as GatewayContext,
        } as unknown as GraphQLDataSourceProcessOptions<GatewayContext>);
        return { data: response.data ?? null };
      },
      createLogger({ service: 'gateway', level: 'silent' }),
    );
  });
  afterAll(async () => {
    await route?.close();
    upstream?.closeAllConnections();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  });
  beforeEach(() => {
    seen.length = 0;
  });

  const post = (query: string, headers: Record<string, string> = {}) => route.post({ query }, headers);

  it('passes a mutation’s key on as an idempotency-key header, beside the internal token', async () => {
    const key = `checkout-${randomUUID()}`;
    const res = await post('mutation { touch }', { 'idempotency-key': key });
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ 'idempotency-key': key, authorization: expect.stringMatching(/^Bearer /) });
  });

  it('sends none for a mutation without a key', async () => {
    expect((await post('mutation { touch }')).status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).not.toHaveProperty('idempotency-key');
  });

  it('sends none for a query, whose key the gateway ignores', async () => {
    expect((await post('{ hello }', { 'idempotency-key': randomUUID() })).status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).not.toHaveProperty('idempotency-key');
  });

  it('never reaches a subgraph with a malformed key', async () => {
    const res = await post('mutation { touch }', { 'idempotency-key': 'k'.repeat(256) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code).toBe('IDEMPOTENCY_KEY_INVALID');
    expect(seen).toHaveLength(0);
  });

  it('replays a repeated keyed mutation at the gateway: the subgraph sees the key once', async () => {
    const key = `retry-${randomUUID()}`;
    await post('mutation { touch }', { 'idempotency-key': key });
    const replay = await post('mutation { touch }', { 'idempotency-key': key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(seen).toHaveLength(1);
  });
});
