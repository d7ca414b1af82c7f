/**
 * An Iceberg table on the object store, written the way a Hadoop-catalog table is laid out:
 * `metadata/vN.metadata.json` (written create-only) plus `metadata/version-hint.text`, Avro
 * manifests and manifest lists, Parquet data files, and delete files (v2: one Parquet
 * position-delete file per data file with deletes; v3: Puffin deletion vectors).
 *
 * A commit adds data files, removes data files (compaction), and replaces a data file's
 * deletes with its full new set. Manifests are carried forward, rewritten when a file in them
 * leaves, and merged past `maxManifests`, so metadata stays small however many commits come.
 * Old snapshots expire on each commit (`keepSnapshots`); the keys no retained snapshot needs
 * any more are returned for the caller's garbage collector (which checks reader leases).
 */
import { randomUUID } from 'node:crypto';
import type { ColumnStats } from '../engine/column-stats.ts';
import { type ParquetWorkerPool, parquetPool } from '../parquet/worker-pool.ts';
import { isPrimitive } from '../schema/iceberg-type.ts';
import { schemaFromIcebergJson, type TableDefinition, type TableSchema } from '../schema/table-schema.ts';
import { NotFoundError, type ObjectStore } from '../store/object-store.ts';
import { decodeAvroFile, encodeAvroFile } from './avro-file.ts';
import {
  type AvroDataFile,
  type AvroManifestEntry,
  type AvroManifestFile,
  CONTENT,
  MANIFEST_STATUS,
  manifestEntrySchema,
  manifestFileSchema,
} from './avro-schemas.ts';
import {
  readDeletionVectorBlob,
  readPositionDeletes,
  writeDeletionVectors,
  writePositionDeletes,
} from './delete-files.ts';
import type { RoaringBitmap64 } from './roaring.ts';
import { lowerBound, upperBound } from './stats.ts';
import {
  currentSnapshotOf,
  initialMetadata,
  metadataVersion,
  type SnapshotJson,
  type TableMetadata,
} from './table-metadata.ts';

export type { ColumnStats };

export interface DataFileEntry {
  key: string;
  recordCount: number;
  fileSizeBytes: number;
  columnStats: Map<number, ColumnStats>;
}

export interface IcebergCommitInput {
  addedDataFiles: DataFileEntry[];
  /** Keys of data files leaving the table (compaction, truncation). */
  removedDataFiles: string[];
  /** Data file key → its full set of deleted positions now (null/empty: no deletes any more). */
  deletes: Map<string, RoaringBitmap64 | null>;
  summary: Record<string, string>;
  operation?: 'append' | 'overwrite' | 'replace' | 'delete';
}

export interface CommitResult {
  metadataKey: string;
  metadataLocation: string;
  snapshotId: number;
  sequenceNumber: number;
  obsoleteKeys: string[];
}

export interface IcebergOptions {
  keepSnapshots?: number;
  maxSnapshotAgeMs?: number;
  previousVersionsMax?: number;
  maxManifests?: number;
  pool?: ParquetWorkerPool;
}

export class IcebergConflictError extends Error {
  readonly code = 'iceberg_conflict';
}

interface Manifest {
  file: AvroManifestFile;
  entries: AvroManifestEntry[];
}

const METADATA_DIR = 'metadata';

function randomSnapshotId(): number {
  return Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 1)) + 1;
}

function isLive(e: AvroManifestEntry): boolean {
  return e.status !== MANIFEST_STATUS.DELETED;
}

export class IcebergTable {
  private readonly manifestCache = new Map<string, Manifest>();
  private readonly listCache = new Map<string, AvroManifestFile[]>();
  private readonly opts: Required<Omit<IcebergOptions, 'maxSnapshotAgeMs' | 'pool'>> &
    Pick<IcebergOptions, 'maxSnapshotAgeMs'>;
  private readonly pool: ParquetWorkerPool;
  private schemaCache: TableSchema | undefined;

  private constructor(
    private readonly store: ObjectStore,
    readonly tableRoot: string,
    private meta: TableMetadata,
    private key: string,
    options: IcebergOptions,
  ) {
    this.opts = {
      keepSnapshots: options.keepSnapshots ?? 20,
      maxSnapshotAgeMs: options.maxSnapshotAgeMs,
      previousVersionsMax: options.previousVersionsMax ?? 20,
      maxManifests: options.maxManifests ?? 8,
    };
    this.pool = options.pool ?? parquetPool();
  }

  get metadata(): TableMetadata {
    return this.meta;
  }

  get metadataKey(): string {
    return this.key;
  }

  metadataLocation(): string {
    return this.store.uri(this.key);
  }

  currentSnapshot(): SnapshotJson | undefined {
    return currentSnapshotOf(this.meta);
  }

  schema(): TableSchema {
    this.schemaCache ??= schemaFromIcebergJson(
      this.meta.schemas.find((s) => s['schema-id'] === this.meta['current-schema-id']) ??
        this.meta.schemas[0],
    );
    return this.schemaCache;
  }

  // ------------------------------------------------------------------ create / load

  static async create(
    store: ObjectStore,
    tableRoot: string,
    def: TableDefinition,
    options: IcebergOptions = {},
  ): Promise<IcebergTable> {
    const meta = initialMetadata(def, store.uri(tableRoot));
    const t = new IcebergTable(
      store,
      tableRoot,
      meta,
      `${tableRoot}/${METADATA_DIR}/v1.metadata.json`,
      options,
    );
    await t.writeMetadata(t.key, meta);
    return t;
  }

  static async load(
    store: ObjectStore,
    metadataKey: string,
    options: IcebergOptions = {},
  ): Promise<IcebergTable> {
    const meta = JSON.parse(new TextDecoder().decode(await store.get(metadataKey))) as TableMetadata;
    const root = metadataKey.slice(0, metadataKey.lastIndexOf(`/${METADATA_DIR}/`));
    return new IcebergTable(store, root, meta, metadataKey, options);
  }

  /** The newest metadata file: from version-hint.text, else the highest vN found by listing. */
  static async loadLatest(
    store: ObjectStore,
    tableRoot: string,
    options: IcebergOptions = {},
  ): Promise<IcebergTable | undefined> {
    let best: number | undefined;
    try {
      const hint = Number(
        new TextDecoder().decode(await store.get(`${tableRoot}/${METADATA_DIR}/version-hint.text`)).trim(),
      );
      if (Number.isInteger(hint) && hint > 0) best = hint;
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    for await (const o of store.list(`${tableRoot}/${METADATA_DIR}/v`)) {
      const v = metadataVersion(o.key);
      if (v !== undefined && (best === undefined || v > best)) best = v;
    }
    if (best === undefined) return undefined;
    return IcebergTable.load(store, `${tableRoot}/${METADATA_DIR}/v${best}.metadata.json`, options);
  }

  private async writeMetadata(key: string, meta: TableMetadata): Promise<void> {
    try {
      await this.store.put(key, new TextEncoder().encode(JSON.stringify(meta, null, 1)), {
        ifNoneMatch: true,
        contentType: 'application/json',
      });
    } catch (e) {
      if ((e as { code?: string }).code === 'precondition_failed') {
        throw new IcebergConflictError(`${key} already exists: another writer committed to this table`);
      }
      throw e;
    }
    const v = metadataVersion(key);
    if (v !== undefined) {
      await this.store.put(
        `${this.tableRoot}/${METADATA_DIR}/version-hint.text`,
        new TextEncoder().encode(String(v)),
      );
    }
  }

  // ------------------------------------------------------------------ reading manifests

  private async manifestList(location: string): Promise<AvroManifestFile[]> {
    let l = this.listCache.get(location);
    if (!l) {
      const key = this.keyOf(location);
      l = decodeAvroFile(await this.store.get(key), key).records as unknown as AvroManifestFile[];
      this.listCache.set(location, l);
    }
    return l;
  }

  private async manifest(file: AvroManifestFile): Promise<Manifest> {
    let m = this.manifestCache.get(file.manifest_path);
    if (!m) {
      const key = this.keyOf(file.manifest_path);
      const entries = decodeAvroFile(await this.store.get(key), key)
        .records as unknown as AvroManifestEntry[];
      m = { file, entries };
      this.manifestCache.set(file.manifest_path, m);
    }
    return m;
  }

  private keyOf(location: string): string {
    const k = this.store.keyFromUri(location);
    if (k === undefined)
      throw new Error(`${location} is outside this table's object store (${this.store.description})`);
    return k;
  }

  private async manifestsOf(s: SnapshotJson | undefined): Promise<Manifest[]> {
    if (!s) return [];
    return Promise.all((await this.manifestList(s['manifest-list'])).map((f) => this.manifest(f)));
  }

  // ------------------------------------------------------------------ state for recovery

  /** Live manifest entries (data and delete files) of the current snapshot. */
  async liveEntries(): Promise<AvroManifestEntry[]> {
    const out: AvroManifestEntry[] = [];
    for (const m of await this.manifestsOf(this.currentSnapshot()))
      for (const e of m.entries) if (isLive(e)) out.push(e);
    return out;
  }

  async currentState(): Promise<{
    dataFiles: (DataFileEntry & { firstRowId?: number })[];
    deletes: Map<string, RoaringBitmap64>;
    summary: Record<string, string>;
    snapshotId?: number;
  }> {
    const s = this.currentSnapshot();
    const dataFiles: (DataFileEntry & { firstRowId?: number })[] = [];
    const deletes = new Map<string, RoaringBitmap64>();
    for (const m of await this.manifestsOf(s)) {
      for (const e of m.entries) {
        if (!isLive(e)) continue;
        const d = e.data_file;
        if (d.content === CONTENT.DATA) {
          dataFiles.push({
            key: this.keyOf(d.file_path),
            recordCount: d.record_count,
            fileSizeBytes: d.file_size_in_bytes,
            columnStats: new Map(),
            ...(d.first_row_id != null ? { firstRowId: d.first_row_id } : {}),
          });
        } else if (d.content === CONTENT.POSITION_DELETES) {
          const key = this.keyOf(d.file_path);
          if (d.file_format === 'PUFFIN') {
            const blob = await this.store.getRange(key, d.content_offset!, d.content_size_in_bytes!);
            const target = this.keyOf(d.referenced_data_file!);
            mergeInto(deletes, target, readDeletionVectorBlob(blob, key));
          } else {
            for (const [path, bm] of await readPositionDeletes(this.pool, await this.store.get(key))) {
              mergeInto(deletes, this.keyOf(path), bm);
            }
          }
        }
      }
    }
    return { dataFiles, deletes, summary: s?.summary ?? {}, snapshotId: s?.['snapshot-id'] };
  }

  // ------------------------------------------------------------------ referenced keys

  private async keysOf(meta: TableMetadata, metadataKey: string): Promise<Set<string>> {
    const keys = new Set<string>([metadataKey, `${this.tableRoot}/${METADATA_DIR}/version-hint.text`]);
    for (const l of meta['metadata-log']) {
      const k = this.store.keyFromUri(l['metadata-file']);
      if (k) keys.add(k);
    }
    for (const s of meta.snapshots) {
      keys.add(this.keyOf(s['manifest-list']));
      for (const m of await this.manifestsOf(s)) {
        keys.add(this.keyOf(m.file.manifest_path));
        for (const e of m.entries) if (isLive(e)) keys.add(this.keyOf(e.data_file.file_path));
      }
    }
    return keys;
  }

  /** Every object any retained snapshot or metadata file refers to. */
  referencedKeys(): Promise<Set<string>> {
    return this.keysOf(this.meta, this.key);
  }

  // ------------------------------------------------------------------ commit

  async commit(input: IcebergCommitInput): Promise<CommitResult> {
    const before = await this.referencedKeys();
    const prev = this.meta;
    const now = Date.now();
    const v3 = prev['format-version'] >= 3;
    const seq = prev['last-sequence-number'] + 1;
    const snapshotId = randomSnapshotId();
    const parent = this.currentSnapshot();
    const manifests = await this.manifestsOf(parent);
    const schema = this.schema();
    const uri = (k: string) => this.store.uri(k);

    // Which live files leave: removed data files, and delete files of data files whose deletes change.
    const removedData = new Set(input.removedDataFiles.map(uri));
    const deleteFileOf = new Map<string, string>(); // data file uri → its live delete file path
    const liveData = new Set<string>();
    for (const m of manifests) {
      for (const e of m.entries) {
        if (!isLive(e)) continue;
        if (e.data_file.content === CONTENT.DATA) liveData.add(e.data_file.file_path);
        else if (e.data_file.referenced_data_file)
          deleteFileOf.set(e.data_file.referenced_data_file, e.data_file.file_path);
      }
    }
    const leaving = new Set<string>(removedData);
    const changed = new Map<string, RoaringBitmap64 | null>();
    for (const [k, bm] of input.deletes) changed.set(uri(k), bm && !bm.isEmpty() ? bm : null);
    for (const dataUri of [...changed.keys(), ...removedData]) {
      const old = deleteFileOf.get(dataUri);
      if (old) leaving.add(old);
    }
    for (const d of removedData) changed.delete(d);

    // Carry manifests forward; rewrite those holding a leaving file.
    const next: Manifest[] = [];
    let addedRows = 0;
    let deletedRows = 0;
    let removedDeleteFiles = 0;
    let removedDataFiles = 0;
    let removedPositionDeletes = 0;
    for (const m of manifests) {
      if (!m.entries.some((e) => isLive(e) && leaving.has(e.data_file.file_path))) {
        next.push(m);
        continue;
      }
      const entries: AvroManifestEntry[] = [];
      for (const e of m.entries) {
        if (!isLive(e)) continue;
        if (leaving.has(e.data_file.file_path)) {
          entries.push({ ...e, status: MANIFEST_STATUS.DELETED, snapshot_id: snapshotId });
          if (e.data_file.content === CONTENT.DATA) {
            removedDataFiles++;
            deletedRows += e.data_file.record_count;
          } else {
            removedDeleteFiles++;
            removedPositionDeletes += e.data_file.record_count;
          }
        } else entries.push({ ...e, status: MANIFEST_STATUS.EXISTING });
      }
      next.push(
        await this.writeManifest(m.file.content, entries, snapshotId, seq, m.file.first_row_id ?? null),
      );
    }

    // New data files.
    let firstRowId = v3 ? (prev['next-row-id'] ?? 0) : 0;
    const snapshotFirstRowId = firstRowId;
    if (input.addedDataFiles.length > 0) {
      const entries = input.addedDataFiles.map((f) => {
        addedRows += f.recordCount;
        const e = this.entry(
          CONTENT.DATA,
          uri(f.key),
          'PARQUET',
          f.recordCount,
          f.fileSizeBytes,
          snapshotId,
          seq,
          schema,
          f.columnStats,
        );
        if (v3) {
          e.data_file.first_row_id = firstRowId;
          firstRowId += f.recordCount;
        }
        return e;
      });
      next.push(
        await this.writeManifest(CONTENT.DATA, entries, snapshotId, seq, v3 ? snapshotFirstRowId : null),
      );
    }

    // New delete files: one per data file (v2) or one Puffin with a vector per data file (v3).
    const newDeletes = [...changed.entries()].filter((x): x is [string, RoaringBitmap64] => x[1] !== null);
    let addedPositionDeletes = 0;
    if (newDeletes.length > 0) {
      const entries: AvroManifestEntry[] = [];
      if (v3) {
        const key = `${this.tableRoot}/data/dv-${randomUUID()}.puffin`;
        const { bytes, blobs } = writeDeletionVectors(
          newDeletes.map(([dataFileUri, positions]) => ({ dataFileUri, positions })),
        );
        await this.store.put(key, bytes);
        newDeletes.forEach(([dataUri, bm], i) => {
          const e = this.entry(
            CONTENT.POSITION_DELETES,
            uri(key),
            'PUFFIN',
            bm.size,
            bytes.length,
            snapshotId,
            seq,
            undefined,
            undefined,
          );
          e.data_file.referenced_data_file = dataUri;
          e.data_file.content_offset = blobs[i].offset;
          e.data_file.content_size_in_bytes = blobs[i].length;
          addedPositionDeletes += bm.size;
          entries.push(e);
        });
      } else {
        for (const [dataUri, bm] of newDeletes) {
          const key = `${this.tableRoot}/data/delete-${randomUUID()}.parquet`;
          const bytes = await writePositionDeletes(this.pool, dataUri, bm);
          await this.store.put(key, bytes);
          const e = this.entry(
            CONTENT.POSITION_DELETES,
            uri(key),
            'PARQUET',
            bm.size,
            bytes.length,
            snapshotId,
            seq,
            undefined,
            undefined,
          );
          e.data_file.referenced_data_file = dataUri;
          const positions = bm.toArray();
          e.data_file.lower_bounds = [
            { key: 2147483546, value: Buffer.from(dataUri) },
            { key: 2147483545, value: lowerBound({ kind: 'long' }, BigInt(positions[0]))! },
          ];
          e.data_file.upper_bounds = [
            { key: 2147483546, value: Buffer.from(dataUri) },
            {
              key: 2147483545,
              value: upperBound({ kind: 'long' }, BigInt(positions[positions.length - 1]))!,
            },
          ];
          addedPositionDeletes += bm.size;
          entries.push(e);
        }
      }
      next.push(await this.writeManifest(CONTENT.POSITION_DELETES, entries, snapshotId, seq, null));
    }

    const merged = await this.mergeManifests(next, snapshotId, seq);
    const listKey = `${this.tableRoot}/${METADATA_DIR}/snap-${snapshotId}-1-${randomUUID()}.avro`;
    const listMeta: Record<string, string> = {
      'snapshot-id': String(snapshotId),
      'parent-snapshot-id': parent ? String(parent['snapshot-id']) : 'null',
      'sequence-number': String(seq),
      'format-version': String(prev['format-version']),
    };
    if (v3) listMeta['first-row-id'] = String(snapshotFirstRowId);
    await this.store.put(
      listKey,
      encodeAvroFile(
        manifestFileSchema(prev['format-version']),
        merged.map((m) => m.file),
        listMeta,
      ),
    );
    this.listCache.set(
      uri(listKey),
      merged.map((m) => m.file),
    );

    // Summary with totals.
    let totalRecords = 0;
    let totalDataFiles = 0;
    let totalDeleteFiles = 0;
    let totalPositionDeletes = 0;
    let totalSize = 0;
    for (const m of merged) {
      for (const e of m.entries) {
        if (!isLive(e)) continue;
        totalSize += e.data_file.file_size_in_bytes;
        if (e.data_file.content === CONTENT.DATA) {
          totalDataFiles++;
          totalRecords += e.data_file.record_count;
        } else {
          totalDeleteFiles++;
          totalPositionDeletes += e.data_file.record_count;
        }
      }
    }
    const operation =
      input.operation ?? (removedData.size > 0 ? 'replace' : changed.size > 0 ? 'overwrite' : 'append');
    const snapshot: SnapshotJson = {
      'snapshot-id': snapshotId,
      'sequence-number': seq,
      'timestamp-ms': now,
      'manifest-list': uri(listKey),
      summary: {
        operation,
        'added-data-files': String(input.addedDataFiles.length),
        'deleted-data-files': String(removedDataFiles),
        'added-records': String(addedRows),
        'deleted-records': String(deletedRows),
        'added-delete-files': String(newDeletes.length),
        'removed-delete-files': String(removedDeleteFiles),
        'added-position-deletes': String(addedPositionDeletes),
        'removed-position-deletes': String(removedPositionDeletes),
        'total-records': String(totalRecords),
        'total-data-files': String(totalDataFiles),
        'total-delete-files': String(totalDeleteFiles),
        'total-position-deletes': String(totalPositionDeletes),
        'total-equality-deletes': '0',
        'total-files-size': String(totalSize),
        ...input.summary,
      },
      'schema-id': prev['current-schema-id'],
    };
    if (parent) snapshot['parent-snapshot-id'] = parent['snapshot-id'];
    if (v3) {
      snapshot['first-row-id'] = snapshotFirstRowId;
      snapshot['added-rows'] = firstRowId - snapshotFirstRowId;
    }

    const version = (metadataVersion(this.key) ?? 0) + 1;
    const nextKey = `${this.tableRoot}/${METADATA_DIR}/v${version}.metadata.json`;
    let snapshots = [...prev.snapshots, snapshot];
    const keep = Math.max(1, this.opts.keepSnapshots);
    if (snapshots.length > keep) snapshots = snapshots.slice(snapshots.length - keep);
    if (this.opts.maxSnapshotAgeMs !== undefined) {
      const cutoff = now - this.opts.maxSnapshotAgeMs;
      snapshots = snapshots.filter((s) => s === snapshot || s['timestamp-ms'] >= cutoff);
    }
    const retained = new Set(snapshots.map((s) => s['snapshot-id']));
    const metadataLog = [
      ...prev['metadata-log'],
      { 'timestamp-ms': prev['last-updated-ms'], 'metadata-file': uri(this.key) },
    ];
    const meta: TableMetadata = {
      ...prev,
      'last-sequence-number': seq,
      'last-updated-ms': now,
      'current-snapshot-id': snapshotId,
      refs: { main: { 'snapshot-id': snapshotId, type: 'branch' } },
      snapshots,
      'snapshot-log': [...prev['snapshot-log'], { 'timestamp-ms': now, 'snapshot-id': snapshotId }].filter(
        (l) => retained.has(l['snapshot-id']),
      ),
      'metadata-log': metadataLog.slice(Math.max(0, metadataLog.length - this.opts.previousVersionsMax)),
    };
    if (v3) meta['next-row-id'] = firstRowId;
    await this.writeMetadata(nextKey, meta);
    this.meta = meta;
    this.key = nextKey;
    const after = await this.referencedKeys();
    this.forgetUnreferenced(after);
    return {
      metadataKey: nextKey,
      metadataLocation: uri(nextKey),
      snapshotId,
      sequenceNumber: seq,
      obsoleteKeys: [...before].filter((k) => !after.has(k)),
    };
  }

  /** Drops cached manifests no retained snapshot uses. */
  private forgetUnreferenced(keys: Set<string>): void {
    for (const path of this.manifestCache.keys())
      if (!keys.has(this.keyOf(path))) this.manifestCache.delete(path);
    for (const path of this.listCache.keys()) if (!keys.has(this.keyOf(path))) this.listCache.delete(path);
  }

  private entry(
    content: number,
    path: string,
    format: string,
    records: number,
    size: number,
    snapshotId: number,
    seq: number,
    schema: TableSchema | undefined,
    stats: Map<number, ColumnStats> | undefined,
  ): AvroManifestEntry {
    const data: AvroDataFile = {
      content,
      file_path: path,
      file_format: format,
      partition: {},
      record_count: records,
      file_size_in_bytes: size,
      column_sizes: null,
      value_counts: null,
      null_value_counts: null,
      nan_value_counts: null,
      lower_bounds: null,
      upper_bounds: null,
      key_metadata: null,
      split_offsets: null,
      equality_ids: null,
      sort_order_id: content === CONTENT.DATA ? 0 : null,
      first_row_id: null,
      referenced_data_file: null,
      content_offset: null,
      content_size_in_bytes: null,
    };
    if (schema && stats) {
      const valueCounts: { key: number; value: number }[] = [];
      const nullCounts: { key: number; value: number }[] = [];
      const nanCounts: { key: number; value: number }[] = [];
      const lower: { key: number; value: Buffer }[] = [];
      const upper: { key: number; value: Buffer }[] = [];
      for (const f of schema.fields) {
        const s = stats.get(f.id);
        if (!s) continue;
        valueCounts.push({ key: f.id, value: s.valueCount });
        nullCounts.push({ key: f.id, value: s.nullCount });
        if (s.nanCount !== undefined) nanCounts.push({ key: f.id, value: s.nanCount });
        if (isPrimitive(f.type) && s.lower !== undefined && s.upper !== undefined) {
          const lo = lowerBound(f.type, s.lower);
          const hi = upperBound(f.type, s.upper);
          if (lo) lower.push({ key: f.id, value: lo });
          if (hi) upper.push({ key: f.id, value: hi });
        }
      }
      data.value_counts = valueCounts;
      data.null_value_counts = nullCounts;
      data.nan_value_counts = nanCounts.length > 0 ? nanCounts : null;
      data.lower_bounds = lower;
      data.upper_bounds = upper;
    }
    return {
      status: MANIFEST_STATUS.ADDED,
      snapshot_id: snapshotId,
      sequence_number: seq,
      file_sequence_number: seq,
      data_file: data,
    };
  }

  private async writeManifest(
    content: number,
    entries: AvroManifestEntry[],
    snapshotId: number,
    seq: number,
    firstRowId: number | null,
  ): Promise<Manifest> {
    const fv = this.meta['format-version'];
    const key = `${this.tableRoot}/${METADATA_DIR}/${randomUUID()}-m0.avro`;
    const records = entries.map((e) => (fv >= 3 ? e : stripV3(e)));
    const bytes = encodeAvroFile(manifestEntrySchema(fv), records, {
      schema: JSON.stringify(
        this.meta.schemas.find((s) => s['schema-id'] === this.meta['current-schema-id']),
      ),
      'schema-id': String(this.meta['current-schema-id']),
      'partition-spec': '[]',
      'partition-spec-id': '0',
      'format-version': String(fv),
      content: content === CONTENT.DATA ? 'data' : 'deletes',
    });
    await this.store.put(key, bytes);
    let added = 0;
    let existing = 0;
    let deleted = 0;
    let addedRows = 0;
    let existingRows = 0;
    let deletedRows = 0;
    let minSeq = seq;
    for (const e of entries) {
      const n = e.data_file.record_count;
      if (e.status === MANIFEST_STATUS.ADDED) {
        added++;
        addedRows += n;
      } else if (e.status === MANIFEST_STATUS.EXISTING) {
        existing++;
        existingRows += n;
      } else {
        deleted++;
        deletedRows += n;
      }
      if (isLive(e) && e.sequence_number !== null) minSeq = Math.min(minSeq, e.sequence_number);
    }
    const file: AvroManifestFile = {
      manifest_path: this.store.uri(key),
      manifest_length: bytes.length,
      partition_spec_id: 0,
      content,
      sequence_number: seq,
      min_sequence_number: minSeq,
      added_snapshot_id: snapshotId,
      added_files_count: added,
      existing_files_count: existing,
      deleted_files_count: deleted,
      added_rows_count: addedRows,
      existing_rows_count: existingRows,
      deleted_rows_count: deletedRows,
      partitions: null,
      key_metadata: null,
    };
    if (fv >= 3) file.first_row_id = content === CONTENT.DATA ? firstRowId : null;
    const m = { file, entries };
    this.manifestCache.set(file.manifest_path, m);
    return m;
  }

  /** Past `maxManifests` of one content type, merges the smallest into one manifest. */
  private async mergeManifests(manifests: Manifest[], snapshotId: number, seq: number): Promise<Manifest[]> {
    const out: Manifest[] = [];
    for (const content of [CONTENT.DATA, CONTENT.POSITION_DELETES]) {
      let group = manifests.filter((m) => m.file.content === content);
      if (group.length > this.opts.maxManifests) {
        group = [...group].sort((a, b) => a.entries.length - b.entries.length);
        const take = group.length - this.opts.maxManifests + 1;
        const small = group.slice(0, take);
        const entries: AvroManifestEntry[] = [];
        for (const m of small) {
          for (const e of m.entries) {
            if (isLive(e)) entries.push({ ...e, status: MANIFEST_STATUS.EXISTING });
            else if (e.snapshot_id === snapshotId) entries.push(e);
          }
        }
        // Row-lineage ids stay on each entry, so the merged manifest needs none of its own.
        const merged = await this.writeManifest(content, entries, snapshotId, seq, null);
        group = [...group.slice(take), merged];
      }
      out.push(...group);
    }
    return out;
  }

  /** Expires snapshots now (commits also do this with the configured retention). */
  async expireSnapshots(opts: {
    keepLast: number;
    olderThanMs?: number;
    now?: number;
  }): Promise<{ metadataKey: string; obsoleteKeys: string[] }> {
    const before = await this.referencedKeys();
    const now = opts.now ?? Date.now();
    const current = this.meta['current-snapshot-id'];
    let snapshots = this.meta.snapshots.slice(
      Math.max(0, this.meta.snapshots.length - Math.max(1, opts.keepLast)),
    );
    if (opts.olderThanMs !== undefined) {
      const cutoff = now - opts.olderThanMs;
      snapshots = snapshots.filter((s) => s['snapshot-id'] === current || s['timestamp-ms'] >= cutoff);
    }
    if (snapshots.length === this.meta.snapshots.length) return { metadataKey: this.key, obsoleteKeys: [] };
    const retained = new Set(snapshots.map((s) => s['snapshot-id']));
    const version = (metadataVersion(this.key) ?? 0) + 1;
    const nextKey = `${this.tableRoot}/${METADATA_DIR}/v${version}.metadata.json`;
    const metadataLog = [
      ...this.meta['metadata-log'],
      { 'timestamp-ms': this.meta['last-updated-ms'], 'metadata-file': this.store.uri(this.key) },
    ];
    const meta: TableMetadata = {
      ...this.meta,
      'last-updated-ms': now,
      snapshots,
      'snapshot-log': this.meta['snapshot-log'].filter((l) => retained.has(l['snapshot-id'])),
      'metadata-log': metadataLog.slice(Math.max(0, metadataLog.length - this.opts.previousVersionsMax)),
    };
    await this.writeMetadata(nextKey, meta);
    this.meta = meta;
    this.key = nextKey;
    const after = await this.referencedKeys();
    this.forgetUnreferenced(after);
    return { metadataKey: nextKey, obsoleteKeys: [...before].filter((k) => !after.has(k)) };
  }
}

function stripV3(e: AvroManifestEntry): AvroManifestEntry {
  const { first_row_id: _f, content_offset: _o, content_size_in_bytes: _s, ...rest } = e.data_file;
  return { ...e, data_file: rest as AvroDataFile };
}

function mergeInto(map: Map<string, RoaringBitmap64>, key: string, bm: RoaringBitmap64): void {
  const cur = map.get(key);
  if (cur) cur.orInPlace(bm);
  else map.set(key, bm);
}
