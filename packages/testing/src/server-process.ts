import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';

const KEPT_OUTPUT_CHARS = 4_000;
const POLL_EVERY_MS = 25;

export interface TestServerOptions {
  /** For the error when it does not start, e.g. `private redis-server on port 1234`. */
  label: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** Asked until it says yes: the server answers (a probe) or has logged that it is ready. */
  isReady(output: string): boolean | Promise<boolean>;
  timeoutMs: number;
}

export interface TestServerProcess {
  /** SIGTERM (after SIGCONT, so a frozen server obeys) and wait for the exit. */
  kill(): Promise<void>;
  /** Sends a signal while it runs (SIGSTOP, SIGCONT). */
  signal(signal: NodeJS.Signals): void;
}

/**
 * A server binary of a test's own (redis-server, nats-server), started and
 * awaited until ready, killed with the test process at the latest: one left
 * behind would hold its port until reboot.
 */
export async function spawnTestServer(options: TestServerOptions): Promise<TestServerProcess> {
  const child = spawn(options.command, options.args, {
    cwd: tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-KEPT_OUTPUT_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const deadline = Date.now() + options.timeoutMs;
  while (!(await options.isReady(output))) {
    if (spawnError || child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      process.removeListener('exit', killOnExit);
      throw new Error(`${options.label} did not start: ${spawnError?.message ?? output.trim()}`, { cause: spawnError });
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_EVERY_MS));
  }
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    signal: (signal) => {
      if (running()) child.kill(signal);
    },
    kill: async () => {
      process.removeListener('exit', killOnExit);
      if (running()) {
        child.kill('SIGCONT');
        child.kill('SIGTERM');
      }
      await exited;
    },
  };
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
