import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '@aifactory/config';
import { AppError } from '@aifactory/errors';
import { startFakeStripe } from '@aifactory/stripe-fake';
import { StripePaymentProvider } from './stripe-payment-provider.js';
import { openStripeSecrets, readStripeSecrets, type ReloadingStripeSecrets } from './stripe-secrets.js';

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

describe('openStripeSecrets', () => {
  const RELOAD_MS = 50;
  let dir: string;
  let keyFile: string;
  let webhookFile: string;
  let secrets: ReloadingStripeSecrets | undefined;
  const errors: unknown[] = [];
  const changes: string[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aif-stripe-reload-'));
    keyFile = path.join(dir, 'stripe-api-key');
    webhookFile = path.join(dir, 'stripe-webhook-secret');
    await writeFile(keyFile, 'sk_test_first\n', { mode: 0o600 });
    await writeFile(webhookFile, 'whsec_old\n', { mode: 0o600 });
    errors.length = 0;
    changes.length = 0;
  });
  afterEach(async () => {
    secrets?.close();
    secrets = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const open = async () =>
    (secrets = await openStripeSecrets(
      { STRIPE_API_KEY_FILE: keyFile, STRIPE_WEBHOOK_SECRET_FILE: webhookFile, STRIPE_SECRETS_RELOAD_MS: RELOAD_MS },
      { onError: (error) => errors.push(error), onChange: (variable) => changes.push(variable) },
    ));

  async function eventually(done: () => boolean, timeoutMs = 3_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error('not within the time allowed');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  it('sees a new webhook secret line and a replaced key within the interval, without being asked', async () => {
    const followed = await open();
    expect(followed.webhookSecrets()).toEqual(['whsec_old']);

    await writeFile(webhookFile, 'whsec_old\nwhsec_new\n');
    await writeFile(keyFile, 'sk_test_second\n');

    await eventually(() => followed.webhookSecrets().length === 2 && followed.apiKey() === 'sk_test_second');
    expect(followed.webhookSecrets()).toEqual(['whsec_old', 'whsec_new']);
    expect(changes.sort()).toEqual(['STRIPE_API_KEY_FILE', 'STRIPE_WEBHOOK_SECRET_FILE']);

    // The overlap ends: the old line goes, and so does the old secret.
    await writeFile(webhookFile, 'whsec_new\n');
    await eventually(() => followed.webhookSecrets().length === 1);
    expect(followed.webhookSecrets()).toEqual(['whsec_new']);
    expect(errors).toEqual([]);
  });

  it('keeps the last good secrets while a file is emptied or missing, says so without a secret, and takes the next good one', async () => {
    const followed = await open();

    await writeFile(webhookFile, '\n');
    await unlink(keyFile);
    await eventually(() => errors.length >= 2);
    await followed.reload();

    expect(followed.apiKey()).toBe('sk_test_first');
    expect(followed.webhookSecrets()).toEqual(['whsec_old']);
    const problems = errors.map((error) => (error as ConfigError).problems.join());
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^STRIPE_API_KEY_FILE: .*ENOENT/), expect.stringMatching(/^STRIPE_WEBHOOK_SECRET_FILE: .* holds no secret$/)]));
    expect(problems.join()).not.toMatch(/sk_test_first|whsec_old/);
    expect(changes).toEqual([]);

    await writeFile(keyFile, 'sk_test_restored\n');
    await writeFile(webhookFile, 'whsec_restored\n');
    await eventually(() => followed.apiKey() === 'sk_test_restored' && followed.webhookSecrets()[0] === 'whsec_restored');
  });

  it('stops reading the files once closed', async () => {
    const followed = await open();
    followed.close();

    await writeFile(keyFile, 'sk_test_after_close\n');
    await new Promise((resolve) => setTimeout(resolve, RELOAD_MS * 4));

    expect(followed.apiKey()).toBe('sk_test_first');
  });

  it('gives the provider the rolled API key from its next call on, without a restart', async () => {
    const fake = await startFakeStripe({ apiKey: 'sk_test_rolled_key' });
    try {
      const followed = await open();
      const provider = new StripePaymentProvider({ apiKey: followed.apiKey, apiUrl: fake.url, timeoutMs: 2_000 });
      const refused = await provider.probe().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(AppError);
      expect((refused as AppError).code).toBe('PAYMENT_PROVIDER_REFUSED');

      await writeFile(keyFile, 'sk_test_rolled_key\n');
      await eventually(() => followed.apiKey() === 'sk_test_rolled_key');

      await expect(provider.probe()).resolves.toBeUndefined();
    } finally {
      await fake.close();
    }
  });
});
