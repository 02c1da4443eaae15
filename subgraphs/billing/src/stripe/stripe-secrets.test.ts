import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '@aifactory/config';
import { readStripeSecrets } from './stripe-secrets.js';

describe('readStripeSecrets', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aif-stripe-secrets-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function file(name: string, content: string): Promise<string> {
    const target = path.join(dir, name);
    await writeFile(target, content, { mode: 0o600 });
    return target;
  }

  async function problemsOf(work: Promise<unknown>): Promise<string[]> {
    const error = await work.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }

  it('reads the trimmed key and one webhook secret per line, blank lines ignored', async () => {
    const secrets = await readStripeSecrets({
      STRIPE_API_KEY_FILE: await file('key', '  sk_test_abc123\n'),
      STRIPE_WEBHOOK_SECRET_FILE: await file('webhook', 'whsec_old \n\n  whsec_new\n'),
    });
    expect(secrets).toEqual({ apiKey: 'sk_test_abc123', webhookSecrets: ['whsec_old', 'whsec_new'] });
  });

  it('names the variable of a missing or empty file, and never its content', async () => {
    const webhook = await file('webhook-ok', 'whsec_fine\n');
    expect(await problemsOf(readStripeSecrets({ STRIPE_API_KEY_FILE: path.join(dir, 'absent'), STRIPE_WEBHOOK_SECRET_FILE: webhook }))).toEqual([
      expect.stringMatching(/^STRIPE_API_KEY_FILE: .*ENOENT/),
    ]);
    expect(await problemsOf(readStripeSecrets({ STRIPE_API_KEY_FILE: await file('empty-key', ' \n'), STRIPE_WEBHOOK_SECRET_FILE: webhook }))).toEqual([
      expect.stringMatching(/^STRIPE_API_KEY_FILE: .* is empty$/),
    ]);
    const problems = await problemsOf(readStripeSecrets({ STRIPE_API_KEY_FILE: await file('key-ok', 'sk_test_secretvalue'), STRIPE_WEBHOOK_SECRET_FILE: await file('blank', '\n\n') }));
    expect(problems).toEqual([expect.stringMatching(/^STRIPE_WEBHOOK_SECRET_FILE: .* holds no secret$/)]);
    expect(problems.join()).not.toContain('sk_test_secretvalue');
  });
});
