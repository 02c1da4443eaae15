import { ConfigError, env, parseConfig, z } from './index.js';

const schema = z.object({
  PORT: env.port(4000),
  DATABASE_URL: env.url(),
  KEYS: env.list(),
  GROUPS: env.json(z.record(z.string(), z.array(z.string()))).default({}),
});

describe('parseConfig', () => {
  it('parses strings into typed values with defaults', () => {
    expect(parseConfig(schema, { DATABASE_URL: 'postgresql://x@localhost/db', KEYS: 'a.pem, b.pem', GROUPS: '{"admin":["ops"]}' })).toEqual({
      PORT: 4000,
      DATABASE_URL: 'postgresql://x@localhost/db',
      KEYS: ['a.pem', 'b.pem'],
      GROUPS: { admin: ['ops'] },
    });
  });

  it('lists every bad or missing variable by name', () => {
    const error = (() => {
      try {
        parseConfig(schema, { PORT: 'http', GROUPS: '{not json' });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const names = (error as ConfigError).problems.map((problem) => problem.split(':')[0]);
    expect(names.sort()).toEqual(['DATABASE_URL', 'GROUPS', 'KEYS', 'PORT']);
  });
});
