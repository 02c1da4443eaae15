import { ConfigError, parseConfig } from '@aifactory/config';
import { gatewayConfigSchema } from './config.js';

const required = {
  POMERIUM_JWKS_URL: 'http://127.0.0.1:1/jwks.json',
  POMERIUM_ISSUER: 'https://authenticate.example.com',
  POMERIUM_AUDIENCE: 'aifactory.example.com',
  INTERNAL_JWT_PRIVATE_KEY_FILE: '/keys/internal.pem',
  API_KEY_PEPPER_FILE: '/keys/api-key-pepper.json',
};

function problems(env: Record<string, string>): string[] {
  try {
    parseConfig(gatewayConfigSchema, { ...required, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('gateway config', () => {
  it("defaults the operation limits to Apollo Router's and the edge to sensible values", () => {
    const config = parseConfig(gatewayConfigSchema, required);
    expect([config.GRAPHQL_MAX_DEPTH, config.GRAPHQL_MAX_HEIGHT, config.GRAPHQL_MAX_ALIASES, config.GRAPHQL_MAX_ROOT_FIELDS, config.GRAPHQL_MAX_TOKENS]).toEqual([
      20, 200, 30, 20, 15_000,
    ]);
    expect(config.BODY_LIMIT_BYTES).toBe(2 * 1024 * 1024);
    expect(config.IDEMPOTENCY_TTL_SECONDS).toBe(86_400);
    expect(config.OTEL_TRACES_EXPORTER).toBe('none');
  });

  it('names the variable of a bad rate-limit document or limit', () => {
    expect(problems({ RATE_LIMITS: '{"default": {"limit": 0}}' }).join('\n')).toMatch(/^RATE_LIMITS/m);
    expect(problems({ GRAPHQL_MAX_DEPTH: 'deep' }).join('\n')).toMatch(/^GRAPHQL_MAX_DEPTH/m);
    expect(problems({ CORS_ALLOWED_ORIGINS: 'not a url' }).join('\n')).toMatch(/^CORS_ALLOWED_ORIGINS/m);
  });

  it('needs the API key pepper file and defaults the key budgets', () => {
    const { API_KEY_PEPPER_FILE: _omitted, ...withoutPepper } = required;
    expect(() => parseConfig(gatewayConfigSchema, withoutPepper)).toThrow(/API_KEY_PEPPER_FILE/);
    const config = parseConfig(gatewayConfigSchema, required);
    expect(config.API_KEY_MODEL_MAX_AGE_MS).toBe(15_000);
    expect(config.API_KEY_FAILURE_LIMIT).toEqual({ limit: 20, windowSeconds: 60 });
    expect(config.API_KEY_NEGATIVE_CACHE_MS).toBe(5_000);
    expect(config.TRUSTED_PROXY_HOPS).toBe(0);
    expect(problems({ API_KEY_FAILURE_LIMIT: '{"limit": 5}' }).join('\n')).toMatch(/^API_KEY_FAILURE_LIMIT/m);
  });

  it('asks for an endpoint when traces go to OTLP', () => {
    expect(problems({ OTEL_TRACES_EXPORTER: 'otlp' })).toEqual([expect.stringMatching(/^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/)]);
    expect(problems({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toEqual([]);
  });
});
