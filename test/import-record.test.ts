/**
 * An import's record is kept as numbered versions; a read takes the newest one that reads. A
 * newest version cut off by a crash (not JSON) or unreadable (s3rver, killed with the writer
 * mid-write, answers such an object with an error) is passed over for the one before it; when
 * no version reads, the store's error comes out instead of "no such import".
 */
import { describe, expect, it } from 'vitest';
import {
  type ImportRecord,
  newImportId,
  readImport,
  writeImport,
} from '../lib/sources/import/import-record.ts';
import { MemoryObjectStore } from '../lib/store/memory-object-store.ts';

/** A store whose reads of the given keys fail as a server error would. */
class BrokenReads extends MemoryObjectStore {
  readonly broken = new Set<string>();
  override async get(key: string): Promise<Uint8Array> {
    if (this.broken.has(key))
      throw Object.assign(new Error('We encountered an internal error.'), { name: 'InternalError' });
    return super.get(key);
  }
}

function record(id: string): ImportRecord {
  const now = new Date().toISOString();
  return {
    id,
    table: 't',
    uri: 'file:///data/x/',
    op: 'insert',
    state: 'running',
    attempt: 1,
    files: 3,
    filesDone: 0,
    rows: 0,
    bytes: 0,
    totalBytes: 30,
    createdAt: now,
    updatedAt: now,
  };
}

const key = (id: string, v: number) => `imports/${id}/${String(v).padStart(10, '0')}.json`;

describe('import records', () => {
  it('reads the newest whole version, passing over a torn or unreadable newest one', async () => {
    const store = new BrokenReads();
    const id = newImportId();
    const r = record(id);
    for (let done = 1; done <= 3; done++) {
      r.filesDone = done;
      await writeImport(store, r);
    }
    expect((await readImport(store, id))?.filesDone).toBe(3);
    // Only the two newest versions are kept.
    const kept: string[] = [];
    for await (const o of store.list(`imports/${id}/`)) kept.push(o.key);
    expect(kept.sort()).toEqual([key(id, 2), key(id, 3)]);

    store.broken.add(key(id, 3));
    expect((await readImport(store, id))?.filesDone).toBe(2);

    // A torn newest version (half its JSON) is passed over the same way.
    await store.put(key(id, 4), new TextEncoder().encode('{"id":"imp_'));
    expect((await readImport(store, id))?.filesDone).toBe(2);

    // Nothing reads: the error, not "no such import".
    store.broken.add(key(id, 2));
    await expect(readImport(store, id)).rejects.toThrow(/internal error/);
    expect(await readImport(store, newImportId())).toBeUndefined();
  });
});
