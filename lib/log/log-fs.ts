/**
 * The file operations the local log uses, behind an interface so tests can inject the faults a
 * real disk produces (short writes, ENOSPC, EIO on fsync) at any point. `nodeLogFs` is the real
 * thing.
 */
import { constants, promises as fs } from 'node:fs';
import { fsyncDir } from '../util/fs-atomic.ts';
import { StorageIoError } from '../util/io-errors.ts';

export interface LogFile {
  /**
   * Each write returns only once its bytes are on stable storage (the file is open with
   * O_DSYNC), so no {@link datasync} is needed after it. Group commit then waits for one I/O
   * round trip instead of two: under load each costs a turn of a busy event loop, and the
   * second added ~8 ms to the log's part of a single-row write's p99 (README, *Durability*).
   */
  readonly writesDurable: boolean;
  /** Writes at `position`; resolves with how many bytes were written (may be fewer than asked). */
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Writes the buffers one after another at `position`; resolves with how many bytes were written. */
  writev(bufs: Uint8Array[], position: number): Promise<number>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface LogFs {
  /** Opens for reading and writing, creating the file if it does not exist. */
  open(file: string): Promise<LogFile>;
  readFile(file: string): Promise<Uint8Array>;
  readdir(dir: string): Promise<string[]>;
  mkdir(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(file: string): Promise<void>;
  /** Makes a folder's entries (created, renamed, removed files) durable. */
  syncDir(dir: string): Promise<void>;
}

class NodeLogFile implements LogFile {
  readonly writesDurable = true;
  constructor(private readonly fh: fs.FileHandle) {}
  async write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return (await this.fh.write(buf, offset, length, position)).bytesWritten;
  }
  async writev(bufs: Uint8Array[], position: number): Promise<number> {
    return (await this.fh.writev(bufs, position)).bytesWritten;
  }
  datasync(): Promise<void> {
    return this.fh.datasync();
  }
  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }
  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

export const nodeLogFs: LogFs = {
  // Not O_APPEND: writes go to explicit positions, so a failed write can be overwritten in place.
  // O_DSYNC: a write is durable when it returns (an error, ENOSPC or EIO, fails that write).
  open: async (file) =>
    new NodeLogFile(await fs.open(file, constants.O_RDWR | constants.O_CREAT | constants.O_DSYNC, 0o644)),
  readFile: async (file) => new Uint8Array(await fs.readFile(file)),
  readdir: (dir) => fs.readdir(dir),
  mkdir: async (dir) => {
    await fs.mkdir(dir, { recursive: true });
  },
  rename: (from, to) => fs.rename(from, to),
  rm: (file) => fs.rm(file, { force: true, recursive: true }),
  syncDir: fsyncDir,
};

/** Writes all of `buf` at `position`, continuing after short writes. */
export async function writeFully(
  f: LogFile,
  buf: Uint8Array,
  position: number,
  where: string,
): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const n = await f.write(buf, done, buf.length - done, position + done);
    if (!(n > 0))
      throw new StorageIoError(
        where,
        undefined,
        `a write made no progress (${done} of ${buf.length} bytes written)`,
      );
    done += n;
  }
}

/**
 * Writes all of `parts`, one after another, at `position` in one call where the system takes
 * them all (continuing after short writes): the log's records go down without being copied
 * into one buffer first.
 */
export async function writePartsFully(
  f: LogFile,
  parts: readonly Uint8Array[],
  position: number,
  where: string,
): Promise<void> {
  let rest = parts.filter((p) => p.length > 0);
  let at = position;
  while (rest.length > 0) {
    const total = rest.reduce((s, p) => s + p.length, 0);
    const n = await f.writev(rest, at);
    if (!(n > 0))
      throw new StorageIoError(where, undefined, `a write made no progress (${at - position} bytes written)`);
    at += n;
    if (n >= total) return;
    // Past the parts written whole, and into the one written in part.
    let skip = n;
    let i = 0;
    while (skip >= rest[i].length) skip -= rest[i++].length;
    rest = [rest[i].subarray(skip), ...rest.slice(i + 1)];
  }
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Replaces a small file: a temporary file written and synced, then renamed over. */
export async function writeDurably(fs: LogFs, file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await fs.rm(tmp);
  const body = new TextEncoder().encode(text);
  const f = await fs.open(tmp);
  try {
    await writeFully(f, body, 0, tmp);
    await f.datasync();
  } finally {
    await f.close();
  }
  await fs.rename(tmp, file);
}
