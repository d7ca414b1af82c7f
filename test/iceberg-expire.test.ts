/**
 * Snapshot expiration and garbage: the keys a commit or expiration reports obsolete must be
 * exactly (keys referenced before) − (keys referenced after), where "referenced" is computed
 * here independently by walking the metadata JSON, manifest lists and manifests; and
 * `referencedKeys()` must equal that walk, so deleting obsolete keys never breaks a retained
 * snapshot. Covers v2 and v3 (Puffin files shared by several deletion vectors), retention on
 * commit (keepSnapshots, maxSnapshotAgeMs, previousVersionsMax), expireSnapshots, and a table
 * reloaded from its metadata in between (the index is rebuilt from the manifests).
 */
import { describe, expect, it } from 'vitest';
import { decodeAvroFile } from '../lib/iceberg/avro-file.ts';
import { type IcebergOptions, IcebergTable } from '../lib/iceberg/iceberg-table.ts';
import { RoaringBitmap64 } from '../lib/iceberg/roaring.ts';
import { parseTableMetadata } from '../lib/iceberg/table-metadata.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { buildSchema } from '../lib/schema/table-schema.ts';
import { MemoryObjectStore } from '../lib/store/memory-object-store.ts';

const schema = buildSchema([
  { name: 'id', type: 'long', nullable: false },
  { name: 'v', type: 'string' },
]);

/** Every key the metadata file at `metadataKey` refers to, by walking the files themselves. */
async function walkReferenced(
  store: MemoryObjectStore,
  root: string,
  metadataKey: string,
): Promise<Set<string>> {
  const key = (uri: string) => {
    const k = store.keyFromUri(uri);
    if (k === undefined) throw new Error(`foreign location ${uri}`);
    return k;
  };
  const meta = parseTableMetadata(new TextDecoder().decode(await store.get(metadataKey)));
  const out = new Set<string>([metadataKey, `${root}/metadata/version-hint.text`]);
  for (const l of meta['metadata-log']) out.add(key(l['metadata-file']));
  for (const s of meta.snapshots) {
    out.add(key(s['manifest-list']));
    const list = decodeAvroFile(await store.get(key(s['manifest-list'])));
    for (const m of list.records) {
      out.add(key(m.manifest_path as string));
      const manifest = decodeAvroFile(await store.get(key(m.manifest_path as string)));
      for (const e of manifest.records as { status: number; data_file: { file_path: string } }[]) {
        if (e.status !== 2) out.add(key(e.data_file.file_path));
      }
    }
  }
  return out;
}

function minus(a: Set<string>, b: Set<string>): string[] {
  return [...a].filter((k) => !b.has(k)).sort();
}

function bitmap(positions: number[]): RoaringBitmap64 {
  const bm = new RoaringBitmap64();
  for (const p of positions) bm.add(p);
  return bm;
}

for (const formatVersion of [2, 3] as const) {
  describe(`expiration and obsolete keys, format v${formatVersion}`, () => {
    it('reports exactly the keys that became unreferenced, commit after commit', async () => {
      const store = new MemoryObjectStore('memory://bucket/');
      const pool = new ParquetWorkerPool(1);
      const root = `tables/expire_v${formatVersion}`;
      const options: IcebergOptions = { pool, keepSnapshots: 3, previousVersionsMax: 2, maxManifests: 4 };
      let table = await IcebergTable.create(
        store,
        root,
        {
          name: 'e',
          tableUuid: crypto.randomUUID(),
          schema,
          formatVersion,
          createdAt: new Date().toISOString(),
        },
        options,
      );
      const live: string[] = [];
      const deletes = new Map<string, number[]>();
      let n = 0;
      let totalObsolete = 0;
      const random = (() => {
        let s = 7;
        return () => {
          s = (s * 1103515245 + 12345) % 2147483648;
          return s / 2147483648;
        };
      })();
      try {
        for (let step = 0; step < 40; step++) {
          const before = await walkReferenced(store, root, table.metadataKey);
          expect(await table.referencedKeys()).toEqual(before);
          const added = [];
          const removed: string[] = [];
          const changed = new Map<string, RoaringBitmap64 | null>();
          if (step % 7 === 6 && live.length >= 3) {
            // Compaction: two files out (with their deletes), one in.
            removed.push(live.shift()!, live.shift()!);
            for (const k of removed) deletes.delete(k);
          }
          for (let i = 0; i < (step % 3) + (removed.length > 0 ? 1 : 0); i++) {
            const key = `${root}/data/${String(n++).padStart(4, '0')}.parquet`;
            await store.put(key, new Uint8Array([1]));
            added.push({ key, recordCount: 50, fileSizeBytes: 1, columnStats: new Map() });
          }
          const pick = [...live, ...added.map((a) => a.key)];
          for (let i = 0; i < 3 && pick.length > 0; i++) {
            const k = pick[Math.floor(random() * pick.length)];
            if (step % 5 === 4 && deletes.has(k)) {
              deletes.delete(k);
              changed.set(k, null);
            } else {
              const next = [...new Set([...(deletes.get(k) ?? []), Math.floor(random() * 50)])];
              deletes.set(k, next);
              changed.set(k, bitmap(next));
            }
          }
          const result = await table.commit({
            addedDataFiles: added,
            removedDataFiles: removed,
            deletes: changed,
            summary: { step: String(step) },
          });
          live.push(...added.map((a) => a.key));
          const after = await walkReferenced(store, root, result.metadataKey);
          expect([...result.obsoleteKeys].sort()).toEqual(minus(before, after));
          expect(new Set(result.obsoleteKeys).size).toBe(result.obsoleteKeys.length);
          expect(await table.referencedKeys()).toEqual(after);
          expect(table.metadata.snapshots.length).toBe(Math.min(3, step + 1));
          expect(table.metadata['metadata-log'].length).toBe(Math.min(2, step + 1));
          totalObsolete += result.obsoleteKeys.length;
          // The garbage collector deletes them; every retained snapshot still reads in full.
          await store.deleteMany(result.obsoleteKeys);
          const walked = await walkReferenced(store, root, result.metadataKey);
          for (const k of walked) expect(await store.head(k), k).toBeDefined();
          const state = await table.currentState();
          expect(state.dataFiles.map((f) => f.key).sort()).toEqual([...live].sort());
          expect(Object.fromEntries([...state.deletes].map(([k, bm]) => [k, bm.toArray()]))).toEqual(
            Object.fromEntries([...deletes].map(([k, v]) => [k, [...v].sort((a, b) => a - b)])),
          );
          // Now and then continue from a freshly loaded table (its index is rebuilt from manifests).
          if (step % 4 === 3) table = await IcebergTable.load(store, result.metadataKey, options);
        }
        expect(totalObsolete).toBeGreaterThan(40);
        // Every object left in the store is referenced: nothing leaked.
        const stored = new Set<string>();
        for await (const o of store.list(`${root}/`)) stored.add(o.key);
        expect(minus(stored, await table.referencedKeys())).toEqual([]);

        // expireSnapshots: keep only the current snapshot.
        const before = await walkReferenced(store, root, table.metadataKey);
        const expired = await table.expireSnapshots({ keepLast: 1 });
        expect(expired.metadataKey).toBe(table.metadataKey);
        expect(table.metadata.snapshots.length).toBe(1);
        expect(table.metadata['snapshot-log'].map((l) => l['snapshot-id'])).toEqual([
          table.currentSnapshot()!['snapshot-id'],
        ]);
        const after = await walkReferenced(store, root, expired.metadataKey);
        expect([...expired.obsoleteKeys].sort()).toEqual(minus(before, after));
        expect(expired.obsoleteKeys.length).toBeGreaterThan(0);
        await store.deleteMany(expired.obsoleteKeys);
        expect((await table.currentState()).dataFiles.length).toBe(live.length);
        // Nothing left to expire: no new metadata file.
        expect(await table.expireSnapshots({ keepLast: 1 })).toEqual({
          metadataKey: table.metadataKey,
          obsoleteKeys: [],
        });
      } finally {
        await pool.close();
      }
    });
  });
}

describe('retention by age', () => {
  it('maxSnapshotAgeMs expires old snapshots on commit; expireSnapshots honours olderThanMs', async () => {
    const store = new MemoryObjectStore();
    const root = 'tables/age';
    const table = await IcebergTable.create(
      store,
      root,
      {
        name: 'age',
        tableUuid: crypto.randomUUID(),
        schema,
        formatVersion: 3,
        createdAt: new Date().toISOString(),
      },
      { maxSnapshotAgeMs: 60_000 },
    );
    const add = async (i: number) => {
      const key = `${root}/data/${i}.parquet`;
      await store.put(key, new Uint8Array([1]));
      return table.commit({
        addedDataFiles: [{ key, recordCount: 1, fileSizeBytes: 1, columnStats: new Map() }],
        removedDataFiles: [],
        deletes: new Map(),
        summary: {},
      });
    };
    for (let i = 0; i < 4; i++) await add(i);
    // All four are younger than a minute.
    expect(table.metadata.snapshots.length).toBe(4);
    // An hour later, everything but the current snapshot is older than 10 minutes.
    const r = await table.expireSnapshots({
      keepLast: 100,
      olderThanMs: 600_000,
      now: Date.now() + 3_600_000,
    });
    expect(table.metadata.snapshots.length).toBe(1);
    expect(r.obsoleteKeys.filter((k) => k.includes('/snap-')).length).toBe(3);
    // Data files stay: the current snapshot still holds them all.
    expect(r.obsoleteKeys.filter((k) => k.includes('/data/'))).toEqual([]);
  });
});
