/**
 * One process per data folder: a lock file holding the owner's pid. A lock left by a process
 * that no longer exists (a crash) is taken over.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

export class DirLockedError extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function lockDir(dir: string): Promise<() => Promise<void>> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'moonlink.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await fs.open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (pid && pid !== process.pid && alive(pid)) {
        throw new DirLockedError(`data folder ${dir} is in use by process ${pid}`);
      }
      await fs.rm(file, { force: true });
    }
  }
  throw new DirLockedError(`could not lock data folder ${dir}`);
}
