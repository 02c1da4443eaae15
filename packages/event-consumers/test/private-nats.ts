import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A nats-server with JetStream for this test file alone (the shared server is
 * never touched). Kept local to the package until @aifactory/testing's
 * `startPrivateNats` is built and can replace it.
 */
export interface LocalNats {
  url: string;
  dispose(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

export async function startLocalNats(): Promise<LocalNats> {
  const port = await freePort();
  const storeDir = mkdtempSync(path.join(tmpdir(), 'aif-event-consumers-nats-'));
  const child = spawn(process.env.NATS_SERVER_BINARY ?? 'nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], {
    cwd: tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => {
    child.kill('SIGKILL');
    rmSync(storeDir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  // A binary that cannot be spawned reports 'error' and may never report 'exit'.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let output = '';
  const ready = new Promise<boolean>((resolve) => {
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4_000);
      if (output.includes('Server is ready')) resolve(true);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    void exited.then(() => resolve(false));
    setTimeout(() => resolve(false), READY_TIMEOUT_MS).unref();
  });
  const dispose = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(storeDir, { recursive: true, force: true });
  };
  if (!(await ready)) {
    await dispose();
    throw new Error(`private nats-server on port ${port} did not start: ${output.trim()}`);
  }
  return { url: `nats://127.0.0.1:${port}`, dispose };
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
