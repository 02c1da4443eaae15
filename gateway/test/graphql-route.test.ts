import { buildSchema } from 'graphql';
import { createLogger } from '@aifactory/logging';
import { captureLogs, type CapturedLogs } from '@aifactory/testing';
import { startGraphQLRoute, type GraphQLRouteHarness } from './graphql-route-harness.js';

const schema = buildSchema('type Query { hello(n: Int): String } type Mutation { touch: String }');

describe('the gateway GraphQL route when something unexpected fails', () => {
  let route: GraphQLRouteHarness;
  let logs: CapturedLogs;

  beforeAll(async () => {
    logs = captureLogs();
    const logger = createLogger({ service: 'gateway', level: 'info', destination: logs.destination });
    route = await startGraphQLRoute(
      schema,
      async () => {
        throw new Error('invariant broken in plan node 7 for tenant acme');
      },
      logger,
    );
  });
  afterAll(async () => {
    await route?.close();
  });

  const post = (body: unknown, headers: Record<string, string> = {}) => route.post(body, headers);

  it('answers INTERNAL_ERROR with no detail and logs one line with the cause under the correlation id', async () => {
    const res = await post({ query: '{ hello }' }, { 'x-correlation-id': 'unexpected-0001' });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ errors: [{ message: 'Internal error', extensions: { code: 'INTERNAL_ERROR', correlationId: 'unexpected-0001' } }] });
    const lines = logs.lines().filter((line) => line.correlationId === 'unexpected-0001');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', status: 500, code: 'INTERNAL_ERROR', errorClass: 'local_defect' });
    expect(JSON.stringify(lines[0]?.cause)).toContain('invariant broken in plan node 7');
  });

  it('lets a keyed mutation that failed unexpectedly be retried instead of replaying the failure', async () => {
    const first = await post({ query: 'mutation { touch }' }, { 'idempotency-key': 'retry-me' });
    expect(first.status).toBe(500);
    const again = await post({ query: 'mutation { touch }' }, { 'idempotency-key': 'retry-me' });
    expect(again.status).toBe(500);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
  });

  it('refuses variables that do not fit the operation before executing', async () => {
    const res = await post({ query: 'query Q($n: Int!) { hello(n: $n) }', variables: { n: 'seven' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code).toBe('BAD_REQUEST_INVALID_INPUT');
  });
});
