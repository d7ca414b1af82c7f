/**
 * One process per data folder, held by the kernel: the holder listens on a Unix socket in the
 * folder (`moonlink.sock`). When the holder exits — cleanly, by SIGKILL, or with its container —
 * the kernel closes the socket, so a stale file is told apart from a live holder by whether a
 * connection is accepted, not by a PID (PIDs repeat across container namespaces and a copied
 * folder carries its lock file along). A holder that is still exiting is waited for.
 *
 * Socket paths are limited to ~107 bytes; for a longer folder path the socket is bound by a
 * path relative to the folder (the process changes directory for the bind only).
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export class DirLockedError extends Error {}

const SOCKET = 'moonlink.sock';
const MAX_SOCKET_PATH = 100;

function listen(server: net.Server, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Whether a live process accepts connections on the socket. */
function held(where: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(where);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Runs `fn` with `where` usable as a socket path (relative to `dir` when the absolute one is too long). */
async function atSocket<T>(dir: string, fn: (where: string) => Promise<T>): Promise<T> {
  const abs = path.join(dir, SOCKET);
  if (abs.length <= MAX_SOCKET_PATH) return fn(abs);
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return await fn(SOCKET);
  } finally {
    process.chdir(cwd);
  }
}

/**
 * Locks `dir` for this process; resolves with the unlock function. Waits up to `waitMs` for a
 * holder that is shutting down, then fails with {@link DirLockedError}.
 */
export async function lockDir(dir: string, options: { waitMs?: number } = {}): Promise<() => Promise<void>> {
  await fs.mkdir(dir, { recursive: true });
  // The pid file of earlier versions means nothing now.
  await fs.rm(path.join(dir, 'moonlink.lock'), { force: true });
  const deadline = Date.now() + (options.waitMs ?? 5000);
  const server = net.createServer((socket) => socket.destroy());
  for (;;) {
    const outcome = await atSocket(dir, async (where) => {
      try {
        await listen(server, where);
        return 'locked' as const;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
      if (await held(where)) return 'held' as const;
      // Nothing listens: a holder that died left its socket file. Take it over.
      await fs.rm(path.join(dir, SOCKET), { force: true });
      return 'retry' as const;
    });
    if (outcome === 'locked') break;
    if (outcome === 'held') {
      if (Date.now() > deadline)
        throw new DirLockedError(`data folder ${dir} is in use by another moonlink process`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  server.unref();
  return async () => {
    // The file first: once the socket closes, a new holder may bind a file of its own.
    await fs.rm(path.join(dir, SOCKET), { force: true });
    await new Promise<void>((r) => server.close(() => r()));
  };
}
