/**
 * Reading a published snapshot: its manifest, each file's rows (Parquet decoded in a worker),
 * and each file's deletion vector (a ranged read of one Puffin blob). Decoded files and
 * vectors are cached by key (objects never change once written), within a byte budget.
 */
import type * as arrow from 'apache-arrow';
import { readData, tableFromIpc } from '../columns/arrow-convert.ts';
import type { DeletionVectorRef } from '../engine/mem-slice.ts';
import {
  parseSnapshotManifest,
  type SnapshotFile,
  type SnapshotManifest,
} from '../engine/snapshot-manifest.ts';
import { decodeDeletionVector } from '../iceberg/deletion-vector.ts';
import type { RoaringBitmap64 } from '../iceberg/roaring.ts';
import { projectBatch } from '../parquet/schema-projection.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import type { Value } from '../schema/values.ts';
import type { ObjectStore } from '../store/object-store.ts';

class LruCache<V> {
  private readonly map = new Map<string, { value: V; size: number }>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}
  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }
  set(key: string, value: V, size: number): void {
    const old = this.map.get(key);
    if (old) this.bytes -= old.size;
    this.map.set(key, { value, size });
    this.bytes += size;
    for (const [k, e] of this.map) {
      if (this.bytes <= this.maxBytes || this.map.size <= 1) break;
      this.map.delete(k);
      this.bytes -= e.size;
    }
  }
}

export interface FileData {
  table: arrow.Table;
  deleted: RoaringBitmap64 | undefined;
}

export class SnapshotReader {
  private readonly manifests = new LruCache<SnapshotManifest>(16 * 1024 * 1024);
  private readonly files = new LruCache<arrow.Table>(256 * 1024 * 1024);
  private readonly vectors = new LruCache<RoaringBitmap64>(32 * 1024 * 1024);

  constructor(
    private readonly store: ObjectStore,
    private readonly pool: () => ParquetWorkerPool,
  ) {}

  async manifest(key: string): Promise<SnapshotManifest> {
    let m = this.manifests.get(key);
    if (!m) {
      const bytes = await this.store.get(key);
      m = parseSnapshotManifest(bytes, key);
      this.manifests.set(key, m, bytes.length * 2);
    }
    return m;
  }

  async deletionVector(ref: DeletionVectorRef): Promise<RoaringBitmap64> {
    const id = `${ref.key}@${ref.offset}`;
    let v = this.vectors.get(id);
    if (!v) {
      const blob = await this.store.getRange(ref.key, ref.offset, ref.length);
      v = decodeDeletionVector(blob, `${ref.key} at ${ref.offset}`);
      this.vectors.set(id, v, ref.length * 4 + 64);
    }
    return v;
  }

  async table(key: string): Promise<arrow.Table> {
    let t = this.files.get(key);
    if (!t) {
      const bytes = await this.store.get(key);
      t = tableFromIpc(await this.pool().decode(bytes));
      this.files.set(key, t, bytes.length * 4 + 1024);
    }
    return t;
  }

  async file(f: SnapshotFile): Promise<FileData> {
    const [table, deleted] = await Promise.all([
      this.table(f.path),
      f.deletes ? this.deletionVector(f.deletes) : undefined,
    ]);
    return { table, deleted };
  }

  /** Every live row of a snapshot as values in schema order (tests, small tables). */
  async readAll(manifest: SnapshotManifest, fields: NestedField[]): Promise<Value[][]> {
    const rows: Value[][] = [];
    for (const f of manifest.files) {
      const { table, deleted } = await this.file(f);
      let pos = 0;
      for (const batch of table.batches) {
        const data = projectBatch(batch, fields);
        const cols = fields.map((field, c) => readData(field.type, data[c]));
        for (let i = 0; i < batch.numRows; i++, pos++) {
          if (deleted?.has(pos)) continue;
          rows.push(cols.map((col) => col[i]));
        }
      }
    }
    return rows;
  }
}
