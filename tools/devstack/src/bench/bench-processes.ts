import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { descendantPids } from './process-cpu.js';

export interface BenchProcess {
  name: string;
  pid: number;
  logFile: string;
  /** Exit code or signal once it has exited. */
  readonly exited: string | undefined;
  /** The end of its log, for a failure message. */
  logTail(lines?: number): string;
  /** SIGTERM, then SIGKILL after the grace, for it and every process it started. */
  stop(graceMs?: number): Promise<void>;
}

export interface BenchProcessSpec {
  name: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  logDir: string;
}

/**
 * A node process of the benchmark. Its output goes to a file, not a pipe, so
 * the benchmark spends nothing reading logs and each server pays for its own
 * logging. It stays in the benchmark's process group: Ctrl-C stops it too.
 */
export function startBenchProcess(spec: BenchProcessSpec): BenchProcess {
  const logFile = path.join(spec.logDir, `${spec.name}.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, spec.args, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', log, log] });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${spec.name}`);
  const pid = child.pid;
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal ?? String(code);
      resolve();
    });
  });
  return {
    name: spec.name,
    pid,
    logFile,
    get exited() {
      return exited;
    },
    logTail: (lines = 20) => readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'),
    stop: async (graceMs = 5_000) => {
      if (exited !== undefined) return;
      const descendants = descendantPids(pid);
      child.kill('SIGTERM');
      const inTime = await Promise.race([exit.then(() => true), sleep(graceMs, false)]);
      if (!inTime) child.kill('SIGKILL');
      await exit;
      for (const orphan of descendants) {
        try {
          process.kill(orphan, 'SIGKILL');
        } catch {
          // already gone with its parent
        }
      }
    },
  };
}
/** Polls `probe` until it holds; fails with the process's log if it exits or the time runs out. */
export async function waitUntilServing(server: BenchProcess, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.exited !== undefined) {
      throw new Error(`${server.name} exited (${server.exited}) while starting:\n${server.logTail()}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`${server.name} did not answer within ${timeoutMs / 1000} s:\n${server.logTail()}`);
    }
    await sleep(100);
  }
}
