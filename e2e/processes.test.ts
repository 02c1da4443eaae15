import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '@aifactory/devstack';
import { createTestDatabase, tempKeyDir, type TempKeys, type TestDatabase } from '@aifactory/testing';

interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runNode(entry: string, env: Record<string, string>, onLine?: (line: string) => void) {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, entry)], { env: { PATH: process.env.PATH ?? '', ...env } });
  let stdout = '';
  let stderr = '';
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout += `${line}\n`;
    onLine?.(line);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exited>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, exited };
}

describe('service processes', () => {
  it('stops the gateway at start with the names of missing variables', async () => {
    const { code, stderr } = await runNode('gateway/dist/main.js', {}).exited;
    expect(code).toBe(1);
    expect(stderr).toContain('POMERIUM_JWKS_URL');
    expect(stderr).toContain('POMERIUM_ISSUER');
    expect(stderr).toContain('INTERNAL_JWT_PRIVATE_KEY_FILE');
  });

  it('stops a subgraph at start with the name of a bad variable', async () => {
    const { code, stderr } = await runNode('subgraphs/billing/dist/main.js', {
      PORT: 'eighty',
      DATABASE_URL: 'postgresql://x@127.0.0.1:5432/x',
      INTERNAL_JWT_PUBLIC_KEY_FILES: '/nonexistent.pem',
      DB_POOL_SIZE: '0',
    }).exited;
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT: /);
    expect(stderr).toMatch(/DB_POOL_SIZE: /);
  });

  describe('a running subgraph', () => {
    let db: TestDatabase;
    let keys: TempKeys;
    beforeAll(async () => {
      db = await createTestDatabase({ subgraphs: ['iam'] });
      keys = await tempKeyDir();
    });
    afterAll(async () => {
      await keys?.cleanup();
      await db?.drop();
    });

    it('shuts down cleanly on SIGTERM', async () => {
      const files = await keys.ed25519('internal');
      let listening: () => void;
      const started = new Promise<void>((resolve) => (listening = resolve));
      const iam = runNode(
        'subgraphs/iam/dist/main.js',
        { PORT: '0', DATABASE_URL: db.appUrl('iam'), DB_POOL_SIZE: '1', INTERNAL_JWT_PUBLIC_KEY_FILES: files.publicKeyFile },
        (line) => line.includes('subgraph listening') && listening(),
      );
      await started;
      iam.child.kill('SIGTERM');
      const { code, stdout } = await iam.exited;
      expect(code).toBe(0);
      const messages = stdout.trim().split('\n').map((line) => JSON.parse(line).msg);
      expect(messages).toEqual(expect.arrayContaining(['shutting down', 'shutdown complete']));
    });
  });
});
