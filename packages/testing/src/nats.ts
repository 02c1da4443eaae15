import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

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
const KEPT_OUTPUT_CHARS = 4_000;

/**
 * A nats-server with JetStream of this test's own, for tests that must break
 * NATS or need their own accounts; the shared server is never stopped.
 */
export async function startPrivateNats(options: PrivateNatsOptions = {}): Promise<PrivateNats> {
  const port = await freePort();
  const storeDir = mkdtempSync(path.join(tmpdir(), 'aif-nats-'));
  let server: RunningNats | undefined;
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

interface RunningNats {
  kill(): Promise<void>;
  signal(signal: NodeJS.Signals): void;
}

async function spawnNats(port: number, storeDir: string, options: PrivateNatsOptions): Promise<RunningNats> {
  const args = [
    ...(options.config ? ['-c', options.config] : []),
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '-js',
    '-sd',
    storeDir,
  ];
  const child = spawn(NATS_SERVER_BINARY, args, {
    cwd: tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let output = '';
  let ready = false;
  let markReady: () => void = () => undefined;
  const readyLine = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-KEPT_OUTPUT_CHARS);
    if (!ready && output.includes('Server is ready')) {
      ready = true;
      markReady();
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  // A server left behind by a test that forgot stop() would hold its port until reboot.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    readyLine.then(() => 'ready' as const),
    exited.then(() => 'exited' as const),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), READY_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (outcome !== 'ready') {
    child.kill('SIGKILL');
    process.removeListener('exit', killOnExit);
    throw new Error(`private nats-server on port ${port} did not start: ${spawnError?.message ?? output.trim()}`, {
      cause: spawnError,
    });
  }
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    signal: (signal) => {
      if (running()) child.kill(signal);
    },
    kill: async () => {
      process.removeListener('exit', killOnExit);
      if (running()) {
        // A frozen server would never act on SIGTERM.
        child.kill('SIGCONT');
        child.kill('SIGTERM');
      }
      await exited;
    },
  };
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
