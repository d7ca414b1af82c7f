/**
 * The embedded default object store: a folder on local disk. Writes go to a temporary file,
 * are fsynced, and are renamed into place, so a reader never sees a partial object.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../util/fs-atomic.ts';
import {
  assertSafeKey,
  NotFoundError,
  type ObjectInfo,
  type ObjectStore,
  PreconditionFailedError,
  type PutOptions,
} from './object-store.ts';

/** Objects larger than this are synced a chunk at a time as they are written. */
const SYNC_CHUNK_BYTES = 8 << 20;

export interface LocalObjectStoreOptions {
  /** Location prefix written into Iceberg metadata; defaults to the folder's `file://` URL. */
  locationBase?: string;
  /** Base URL of an HTTP server that serves this folder (the embedded service's `/files/`). */
  readUrlBase?: string;
}

export class LocalObjectStore implements ObjectStore {
  readonly root: string;
  readonly description: string;
  private readonly locationBase: string;
  readUrlBase: string | undefined;

  constructor(root: string, options: LocalObjectStoreOptions = {}) {
    this.root = path.resolve(root);
    this.description = `local:${this.root}`;
    const base = options.locationBase ?? pathToFileURL(this.root).href;
    this.locationBase = base.endsWith('/') ? base : `${base}/`;
    this.readUrlBase = options.readUrlBase;
  }

  private file(key: string): string {
    assertSafeKey(key);
    return path.join(this.root, key);
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<void> {
    const file = this.file(key);
    const tmp = `${file}.${randomUUID()}.tmp`;
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(tmp, 'w');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      // The folder does not exist (or a delete just removed it as empty): create it and retry.
      await fs.mkdir(path.dirname(file), { recursive: true });
      fh = await fs.open(tmp, 'w').catch(async () => {
        await fs.mkdir(path.dirname(file), { recursive: true });
        return fs.open(tmp, 'w');
      });
    }
    try {
      if (options.ephemeral || body.byteLength <= SYNC_CHUNK_BYTES) await fh.writeFile(body);
      else {
        // Synced as it is written: a big file's dirty pages, flushed all at once by one fsync,
        // hold up every other fsync on the disk meanwhile (the logs' acknowledgements among them).
        for (let at = 0; at < body.byteLength; at += SYNC_CHUNK_BYTES) {
          const end = Math.min(body.byteLength, at + SYNC_CHUNK_BYTES);
          for (let done = at; done < end; )
            done += (await fh.write(body, done, end - done, done)).bytesWritten;
          await fh.datasync();
        }
      }
      if (!options.ephemeral) await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      if (options.ifNoneMatch) {
        try {
          await fs.link(tmp, file);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailedError(key);
          throw e;
        }
      } else {
        await fs.rename(tmp, file);
      }
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await fs.readFile(this.file(key)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(key);
      throw e;
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.file(key), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(key);
      throw e;
    }
    try {
      const buf = new Uint8Array(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await fh.read(buf, read, length - read, offset + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      return read === length ? buf : buf.subarray(0, read);
    } finally {
      await fh.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.file(key));
      return { key, size: st.size, lastModified: st.mtime };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.file(key);
    await fs.rm(file, { force: true });
    // Remove folders left empty, up to the root (another writer may race: ignore failures).
    let dir = path.dirname(file);
    while (dir.startsWith(this.root) && dir !== this.root) {
      try {
        await fs.rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  async deleteMany(keys: string[]): Promise<void> {
    await Promise.all(keys.map((k) => this.delete(k)));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk the deepest folder the prefix names, then filter by the full prefix.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const start = dirKey === '' ? this.root : this.file(dirKey);
    const found: ObjectInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
      for (const ent of entries) {
        const full = path.join(dir, ent.name);
        const key = path.relative(this.root, full).split(path.sep).join('/');
        if (ent.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(full);
        } else if (ent.isFile() && key.startsWith(prefix) && !ent.name.endsWith('.tmp')) {
          const st = await fs.stat(full).catch(() => undefined);
          if (st) found.push({ key, size: st.size, lastModified: st.mtime });
        }
      }
    };
    await walk(start);
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  uri(key: string): string {
    assertSafeKey(key);
    return this.locationBase + key;
  }

  keyFromUri(uri: string): string | undefined {
    if (uri.startsWith(this.locationBase)) return uri.slice(this.locationBase.length);
    // The folder's own location, when the metadata was written under another (a moved folder).
    const here = `${pathToFileURL(this.root).href}/`;
    return uri.startsWith(here) ? uri.slice(here.length) : undefined;
  }

  async readUrl(key: string): Promise<string> {
    assertSafeKey(key);
    if (this.readUrlBase) return `${this.readUrlBase.replace(/\/$/, '')}/${key}`;
    return pathToFileURL(path.join(this.root, key)).href;
  }
}

/**
 * The location base a data folder's Iceberg metadata was written with, kept in `file` beside
 * the objects. A folder copied or restored to another path keeps resolving its metadata's
 * locations against where it is now; the first start records the base.
 */
export async function recordedLocationBase(
  file: string,
  root: string,
): Promise<{ locationBase: string; movedFrom?: string }> {
  const here = pathToFileURL(path.resolve(root)).href;
  try {
    const saved = JSON.parse(await fs.readFile(file, 'utf8')) as { locationBase?: unknown };
    if (typeof saved.locationBase === 'string' && saved.locationBase.startsWith('file:')) {
      const base = saved.locationBase.replace(/\/$/, '');
      return base === here ? { locationBase: base } : { locationBase: base, movedFrom: base };
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await writeFileAtomic(file, JSON.stringify({ locationBase: here }));
  return { locationBase: here };
}
