import { deletionVectorBlob } from '../iceberg/delete-files.ts';
import { writePuffin } from '../iceberg/puffin.ts';
import type { Lsn } from '../lsn.ts';
import type { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import { type PartitionSpec, specToIcebergJson } from '../schema/partition-spec.ts';
import { schemaToIcebergJson } from '../schema/schema-json.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import type { ObjectKey } from '../store/object-keys.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { iota } from './hash-sort.ts';
import type { DeletionVectorRef, MemSlice, TailSegment } from './mem-slice.ts';
import { SNAPSHOT_FORMAT, type SnapshotFile, type SnapshotManifest } from './snapshot-manifest.ts';
import { encodeColumnsIn } from './worker-jobs.ts';

export type DvSource =
  | { kind: 'none' }
  | { kind: 'keep'; ref: DeletionVectorRef }
  | { kind: 'new'; blob: number };

export interface CapturedFile {
  kind: 'data' | 'tail';
  key: string;
  rowCount: number;
  sizeBytes: number;
  dv: DvSource;
  /** A partitioned data file's spec and partition (SnapshotFile's). */
  specId?: number;
  partition?: Record<string, unknown>;
}

export interface CapturedTail {
  slice: MemSlice;
  segment: TailSegment;
}

export interface CapturedBlob {
  /** Key of the data or tail file the vector belongs to. */
  fileKey: string;
  blob: Uint8Array;
  cardinality: number;
}

export interface SnapshotCapture {
  lsn: Lsn;
  seq: number;
  stateVersion: number;
  /** Tail files (and their sizes) are filled in as they are written. */
  files: CapturedFile[];
  tails: CapturedTail[];
  blobs: CapturedBlob[];
  /** Keys of the manifest and of the Puffin file for changed deletion vectors. */
  manifestKey: ObjectKey;
  dvKey: ObjectKey;
}

export interface SnapshotWritten {
  manifestKey: ObjectKey;
  manifest: SnapshotManifest;
  /** Reference of each captured blob, by index. */
  blobRefs: DeletionVectorRef[];
  tailSizes: Map<TailSegment, number>;
}

export interface SnapshotWriterDeps {
  table: string;
  /** Prefix for the snapshot's own objects (see ephemeralRootOf). */
  ephemeralRoot: string;
  /** The table's schema at the snapshot's LSN. */
  schema: TableSchema;
  /** The table's partition specs (those of partitioned files go into the manifest). */
  specs?: Map<number, PartitionSpec>;
  store: ObjectStore;
  pool: ParquetWorkerPool;
}

export async function writeSnapshot(c: SnapshotCapture, deps: SnapshotWriterDeps): Promise<SnapshotWritten> {
  const { store, pool } = deps;
  const tailSizes = new Map<TailSegment, number>();
  await Promise.all(
    c.tails.map(async ({ slice, segment }) => {
      const { bytes } = await encodeColumnsIn(pool, {
        fields: slice.fields,
        images: slice.columns.map((c) => c.image(segment.start, segment.end)),
        rows: iota(segment.end - segment.start),
        compression: 'lz4',
        withStats: false,
      });
      await store.put(segment.key!, bytes, { ephemeral: true });
      tailSizes.set(segment, bytes.length);
    }),
  );
  let blobRefs: DeletionVectorRef[] = [];
  if (c.blobs.length > 0) {
    const key = c.dvKey;
    const { bytes, blobs } = writePuffin(
      c.blobs.map((b) => deletionVectorBlob(store.uri(b.fileKey), b.blob, b.cardinality)),
    );
    await store.put(key, bytes, { ephemeral: true });
    blobRefs = blobs.map((m, i) => ({
      key,
      offset: m.offset,
      length: m.length,
      cardinality: c.blobs[i].cardinality,
    }));
  }
  const files: SnapshotFile[] = c.files.map((f) => {
    const out: SnapshotFile = { path: f.key, kind: f.kind, rowCount: f.rowCount, sizeBytes: f.sizeBytes };
    if (f.partition) {
      out.specId = f.specId;
      out.partition = f.partition;
    }
    if (f.dv.kind === 'keep') out.deletes = f.dv.ref;
    else if (f.dv.kind === 'new') out.deletes = blobRefs[f.dv.blob];
    return out;
  });
  for (const t of c.tails) {
    const f = files.find((x) => x.path === t.segment.key);
    if (f) f.sizeBytes = tailSizes.get(t.segment) ?? 0;
  }
  const manifest: SnapshotManifest = {
    format: SNAPSHOT_FORMAT,
    table: deps.table,
    lsn: c.lsn.toString(),
    seq: c.seq,
    createdAt: new Date().toISOString(),
    schemaId: deps.schema.schemaId,
    // A table whose schema changed says which one this snapshot is in (readers project to it).
    ...(deps.schema.schemaId > 0 ? { schema: schemaToIcebergJson(deps.schema) } : {}),
    files,
  };
  const used = new Set(files.flatMap((f) => (f.specId === undefined ? [] : [f.specId])));
  if (used.size > 0 && deps.specs) {
    manifest.partitionSpecs = [...used].flatMap((id) => {
      const spec = deps.specs!.get(id);
      return spec ? [specToIcebergJson(spec)] : [];
    });
  }
  const manifestKey = c.manifestKey;
  await store.put(manifestKey, new TextEncoder().encode(JSON.stringify(manifest)), { ephemeral: true });
  return { manifestKey, manifest, blobRefs, tailSizes };
}
