import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/**
 * Writes `data` beside `file`, flushes it, then renames it over `file`: a
 * reader (a service re-reading its keys) sees the old file or the new one,
 * never half of either.
 */
export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * Runs `work` while holding `<file>.lock` (created exclusively), so two
 * rotations of the same secret never interleave. A lock left by a crashed
 * run must be removed by hand; the error says where it is.
 */
export async function withLock<T>(file: string, work: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  let handle;
  try {
    handle = await open(lock, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new Error(`another rotation holds ${lock}; if none is running, remove the file and try again`);
    }
    throw error;
  }
  try {
    await handle.writeFile(`${process.pid}\n`);
    await handle.close();
    return await work();
  } finally {
    await rm(lock, { force: true });
  }
}
