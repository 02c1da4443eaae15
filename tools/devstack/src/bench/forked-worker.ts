import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/**
 * The protocol every worker speaks: commands and replies named by `kind`;
 * an `exit` command ends the worker, a `failed` reply with a `message`
 * reports a failure (a worker that never fails need not have one).
 */
type Message = { kind: string };

/**
 * A benchmark's load generator in a process of its own (the usage
 * publishers, the subscription fan-out's subscribers), so its CPU is
 * measured apart from what it loads. Replies arrive in a queue, commands go
 * out one at a time; one class for every worker, so each fails the same way
 * when its process dies, stalls or reports a failure.
 */
export class ForkedWorker<Command extends Message, Reply extends Message> {
  private readonly inbox: Reply[] = [];
  private arrived: (() => void) | undefined;
  private exitedWith: string | undefined;
  private readonly exited: Promise<void>;

  /** `name` says which process in errors ("the publisher process ..."). */
  private constructor(
    private readonly name: string,
    private readonly child: ChildProcess,
    private readonly logFile: string,
  ) {
    child.on('message', (message) => {
      this.inbox.push(message as Reply);
      this.arrived?.();
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitedWith = signal ?? String(code);
        this.arrived?.();
        resolve();
      }),
    );
  }

  /** Forks `entry`, its output appended to `logFile`; it is killed when this process exits. */
  static start<Command extends Message, Reply extends Message>(name: string, entry: string, logFile: string): ForkedWorker<Command, Reply> {
    const log = openSync(logFile, 'a');
    const child = fork(entry, [], { stdio: ['ignore', log, log, 'ipc'], env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' } });
    closeSync(log);
    // Never left behind, whatever way this process ends.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => process.off('exit', killOnExit));
    return new ForkedWorker<Command, Reply>(name, child, logFile);
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(command: Command): void {
    this.child.send(command);
  }

  /** The next reply, which must be a `kind` one; a `failed` reply, the process's exit or `timeoutMs` passing throws. */
  async next<K extends Reply['kind']>(kind: K, timeoutMs: number): Promise<Extract<Reply, { kind: K }>> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.exitedWith !== undefined) throw new Error(`the ${this.name} process exited (${this.exitedWith}); see ${this.logFile}`);
      if (Date.now() > deadline) throw new Error(`the ${this.name} process sent no ${kind} within ${timeoutMs / 1000} s; see ${this.logFile}`);
      await this.waitForMessage(deadline - Date.now());
    }
    const reply: Message & { message?: unknown } = this.inbox.shift()!;
    if (reply.kind === 'failed') throw new Error(`the ${this.name} process failed: ${reply.message}`);
    if (reply.kind !== kind) throw new Error(`the ${this.name} process sent ${reply.kind}, expected ${kind}`);
    return reply as Extract<Reply, { kind: K }>;
  }

  async stop(): Promise<void> {
    if (this.exitedWith !== undefined) return;
    if (this.child.connected) this.child.send({ kind: 'exit' });
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(kill);
  }

  /**
   * Until a reply arrives, the process exits or `ms` pass. The timer never
   * outlives the wait, and never holds this process open on its own (a
   * reply awaited in the background must not keep a finished bench alive).
   */
  private async waitForMessage(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.arrived = resolve;
      timer = setTimeout(resolve, Math.max(0, ms)).unref();
    });
    clearTimeout(timer);
    this.arrived = undefined;
  }
}
