import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export type ServiceSpec = {
  name: string;
  env: Record<string, string>;
  /**
   * In a process group of its own, so a terminal's Ctrl-C does not reach it:
   * it stops only when the supervisor stops it, after the services that use it.
   */
  ownProcessGroup?: boolean;
} & (
  | { /** A Node.js script, relative to cwd, run with this Node. */ entry: string }
  | { /** Another program (nats-server) with its arguments. */ program: string; args: string[] }
);

export interface Supervisor {
  pidOf(name: string): number | undefined;
  stop(): Promise<void>;
}

const MAX_RESTARTS_PER_MINUTE = 5;

/**
 * Runs the services as one process tree with prefixed logs. A service that
 * dies is restarted after a pause; one that keeps dying stops the whole tree,
 * because a half-running platform misleads more than a stopped one.
 */
export function superviseServices(services: ServiceSpec[], cwd: string, onGiveUp: (reason: string) => void): Supervisor {
  const width = Math.max(...services.map((service) => service.name.length));
  const children = new Map<string, ChildProcess>();
  const restarts = new Map<string, number[]>();
  let stopping = false;

  const pipe = (name: string, stream: NodeJS.ReadableStream | null, out: NodeJS.WriteStream) => {
    if (!stream) return;
    const prefix = `[${name.padEnd(width)}] `;
    createInterface({ input: stream }).on('line', (line) => out.write(`${prefix}${line}\n`));
  };

  const launch = (service: ServiceSpec) => {
    const [file, args] = 'program' in service ? [service.program, service.args] : [process.execPath, [service.entry]];
    const child = spawn(file, args, {
      cwd,
      env: { ...process.env, ...service.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: service.ownProcessGroup === true,
    });
    children.set(service.name, child);
    if (service.ownProcessGroup) {
      // Out of our process group nothing else would stop it if this process ends without stop().
      const killOnExit = () => child.kill('SIGTERM');
      process.once('exit', killOnExit);
      child.once('exit', () => process.removeListener('exit', killOnExit));
    }
    child.once('error', (error) => {
      if (!stopping) onGiveUp(`${service.name} could not start: ${error.message}`);
    });
    pipe(service.name, child.stdout, process.stdout);
    pipe(service.name, child.stderr, process.stderr);
    child.on('exit', (code, signal) => {
      if (stopping) return;
      const now = Date.now();
      const recent = [...(restarts.get(service.name) ?? []), now].filter((at) => now - at < 60_000);
      restarts.set(service.name, recent);
      if (recent.length > MAX_RESTARTS_PER_MINUTE) {
        onGiveUp(`${service.name} exited ${MAX_RESTARTS_PER_MINUTE} times within a minute (last: ${signal ?? code})`);
        return;
      }
      process.stderr.write(`[${service.name.padEnd(width)}] exited (${signal ?? code}); restarting in 1 s\n`);
      setTimeout(() => !stopping && launch(service), 1_000);
    });
  };

  for (const service of services) launch(service);

  return {
    pidOf: (name) => children.get(name)?.pid,
    stop: async () => {
      stopping = true;
      await Promise.all(
        [...children.values()].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
