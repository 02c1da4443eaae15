import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** The fields of /proc/<pid>/stat after the command name, which may itself hold spaces and parentheses. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU milliseconds a process has used, from the kernel's counters for it. */
export function processCpuMs(pid: number): number {
  const fields = statFields(pid);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / TICKS_PER_SECOND;
}

/** Every process on this machine by pid: its command name and its parent's pid. */
export function processTable(): Map<number, { name: string; parent: number }> {
  const table = new Map<number, { name: string; parent: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    const nameEnd = stat.lastIndexOf(')');
    table.set(Number(entry), { name: stat.slice(stat.indexOf('(') + 1, nameEnd), parent: Number(stat.slice(nameEnd + 2).split(' ')[1]) });
  }
  return table;
}

/** The pids whose parent chain leads to `root`, nearest first; `root` itself excluded. */
export function descendantPids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, { parent }] of processTable()) children.set(parent, [...(children.get(parent) ?? []), pid]);
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/**
 * CPU milliseconds of a process and all its descendants: a server that forks
 * workers is charged for them too. A descendant that has exited and been
 * reaped is still counted, through its parent's cutime + cstime.
 */
export function processTreeCpuMs(root: number): number {
  let ticks = 0;
  for (const pid of [root, ...descendantPids(root)]) {
    try {
      const fields = statFields(pid);
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    } catch (error) {
      if (pid === root) throw error;
    }
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}
