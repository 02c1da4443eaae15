import { ServiceMetrics } from './metrics.js';

function seriesLines(body: string, name: string): string[] {
  return body.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

describe('ServiceMetrics', () => {
  it('renders request series with their labels, the service label and process metrics', async () => {
    const metrics = new ServiceMetrics('gateway');
    metrics.observeRequest('/graphql', 'ListProjects', 'ok', 0.042);
    metrics.observeRequest('/graphql', '-', 'BILLING_INSUFFICIENT_FUNDS', 0.3);

    const { contentType, body } = await metrics.render();

    expect(contentType).toMatch(/^text\/plain/);
    expect(seriesLines(body, 'aif_http_request_duration_seconds_count')).toEqual(
      expect.arrayContaining([
        'aif_http_request_duration_seconds_count{service="gateway",route="/graphql",operation="ListProjects",outcome="ok"} 1',
        'aif_http_request_duration_seconds_count{service="gateway",route="/graphql",operation="-",outcome="BILLING_INSUFFICIENT_FUNDS"} 1',
      ]),
    );
    expect(body).toContain(
      'aif_http_request_duration_seconds_bucket{le="0.05",service="gateway",route="/graphql",operation="ListProjects",outcome="ok"} 1',
    );
    expect(seriesLines(body, 'process_cpu_user_seconds_total')).toEqual([
      expect.stringMatching(/^process_cpu_user_seconds_total\{service="gateway"\} \d/),
    ]);
  });

  it('keeps two services in one process apart', async () => {
    const billing = new ServiceMetrics('billing');
    const projects = new ServiceMetrics('projects');
    billing.observeRequest('/graphql', 'Charge', 'ok', 0.01);

    expect((await billing.render()).body).toContain('operation="Charge"');
    expect((await projects.render()).body).not.toContain('operation="Charge"');
  });

  it('returns the same counter when asked twice by name', async () => {
    const metrics = new ServiceMetrics('billing');
    const first = metrics.counter('aif_usage_posted_total', 'Usage records posted.', ['kind']);
    const second = metrics.counter('aif_usage_posted_total', 'Usage records posted.', ['kind']);
    first.inc({ kind: 'gpu' });
    second.inc({ kind: 'gpu' });

    expect(second).toBe(first);
    expect((await metrics.render()).body).toContain('aif_usage_posted_total{kind="gpu",service="billing"} 2');
  });

  it('refuses a name already taken by another kind of metric', () => {
    const metrics = new ServiceMetrics('billing');
    metrics.counter('aif_ledger_postings', 'Postings.', []);

    expect(() => metrics.gauge('aif_ledger_postings', 'Postings.', [])).toThrow(/another kind/);
  });

  it('samples a gauge through its collect function at render time', async () => {
    const metrics = new ServiceMetrics('scheduler');
    let depth = 3;
    metrics.gauge('aif_queue_depth', 'Jobs waiting.', ['queue'], (gauge) => gauge.set({ queue: 'allocations' }, depth));
    depth = 7;

    expect((await metrics.render()).body).toContain('aif_queue_depth{queue="allocations",service="scheduler"} 7');
  });

  it('uses the given buckets for a histogram', async () => {
    const metrics = new ServiceMetrics('billing');
    metrics.histogram('aif_rating_seconds', 'Rating time.', [], [0.5, 2]).observe(1);

    const body = (await metrics.render()).body;
    expect(seriesLines(body, 'aif_rating_seconds_bucket')).toEqual([
      'aif_rating_seconds_bucket{le="0.5",service="billing"} 0',
      'aif_rating_seconds_bucket{le="2",service="billing"} 1',
      'aif_rating_seconds_bucket{le="+Inf",service="billing"} 1',
    ]);
  });

  it('labels operation names that are not plain identifiers "invalid"', async () => {
    const metrics = new ServiceMetrics('gateway');
    for (const name of ['drop table', 'a'.repeat(65), '9lives', 'x"}\nfake_metric 1', '']) {
      metrics.observeRequest('/graphql', name, 'ok', 0.01);
    }

    const counts = seriesLines((await metrics.render()).body, 'aif_http_request_duration_seconds_count');
    expect(counts).toEqual([
      'aif_http_request_duration_seconds_count{service="gateway",route="/graphql",operation="invalid",outcome="ok"} 5',
    ]);
  });

  it('labels new operation names "other" after 500 distinct ones', async () => {
    const metrics = new ServiceMetrics('gateway');
    for (let i = 0; i < 500; i += 1) metrics.observeRequest('/graphql', `Op${i}`, 'ok', 0.01);
    metrics.observeRequest('/graphql', 'Op500', 'ok', 0.01);
    metrics.observeRequest('/graphql', 'Op501', 'ok', 0.01);
    metrics.observeRequest('/graphql', 'Op0', 'ok', 0.01);
    metrics.observeRequest('/graphql', '-', 'ok', 0.01);

    const counts = seriesLines((await metrics.render()).body, 'aif_http_request_duration_seconds_count');
    expect(counts).toHaveLength(502);
    expect(counts).toEqual(
      expect.arrayContaining([
        'aif_http_request_duration_seconds_count{service="gateway",route="/graphql",operation="other",outcome="ok"} 2',
        'aif_http_request_duration_seconds_count{service="gateway",route="/graphql",operation="Op0",outcome="ok"} 2',
        'aif_http_request_duration_seconds_count{service="gateway",route="/graphql",operation="-",outcome="ok"} 1',
      ]),
    );
  });
});
