import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, spawnTestServer, type TestServerProcess } from './server-process.js';

export interface PrivateNatsOptions {
  /** A nats-server config file (`-c`); the port, address and store directory flags still win. */
  config?: string;
  /** Extra environment for the server, e.g. the passwords a config file names as `$VAR`. */
  env?: Record<string, string>;
}

export interface PrivateNats {
  url: string;
  port: number;
  /** JetStream's store directory; kept across stop() and start(), removed by dispose(). */
  storeDir: string;
  /** Stops the server (SIGTERM) and waits for it to exit; clients see a dead NATS. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store directory (streams and messages survive). */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open but nothing answers, as in a hung broker. */
  freeze(): void;
  /** Lets a frozen server run again (SIGCONT). */
  thaw(): void;
  /** Stops it and deletes its store directory. */
  dispose(): Promise<void>;
}

const NATS_SERVER_BINARY = process.env.NATS_SERVER_BINARY ?? 'nats-server';
const READY_TIMEOUT_MS = 15_000;

/**
 * A nats-server with JetStream of this test's own, for tests that must break
 * NATS or need their own accounts; the shared server is never stopped.
 */
export async function startPrivateNats(options: PrivateNatsOptions = {}): Promise<PrivateNats> {
  const port = await freePort();
  const storeDir = mkdtempSync(path.join(tmpdir(), 'aif-nats-'));
  let server: TestServerProcess | undefined;
  const removeStoreOnExit = () => rmSync(storeDir, { recursive: true, force: true });
  process.once('exit', removeStoreOnExit);
  const start = async () => {
    if (server) return;
    server = await spawnNats(port, storeDir, options);
  };
  const stop = async () => {
    const running = server;
    server = undefined;
    await running?.kill();
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    start,
    stop,
    freeze: () => server?.signal('SIGSTOP'),
    thaw: () => server?.signal('SIGCONT'),
    dispose: async () => {
      await stop();
      process.removeListener('exit', removeStoreOnExit);
      removeStoreOnExit();
    },
  };
}

function spawnNats(port: number, storeDir: string, options: PrivateNatsOptions): Promise<TestServerProcess> {
  return spawnTestServer({
    label: `private nats-server on port ${port}`,
    command: NATS_SERVER_BINARY,
    args: [...(options.config ? ['-c', options.config] : []), '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir],
    ...(options.env ? { env: options.env } : {}),
    isReady: (output) => output.includes('Server is ready'),
    timeoutMs: READY_TIMEOUT_MS,
  });
}
