/**
 * An Iceberg table on the object store, laid out like a Hadoop-catalog table:
 * `metadata/vN.metadata.json` (written create-only; the caller's catalog does the real
 * compare-and-swap of the current location) plus `metadata/version-hint.text`, Avro manifests
 * (`metadata/<uuid>-m<k>.avro`) and manifest lists (`metadata/snap-<id>-1-<uuid>.avro`),
 * Parquet data files named by the caller, and delete files under `data/`:
 * - format v2: one Parquet position-delete file per data file with deletes
 *   (`data/delete-<uuid>.parquet`), replaced whole when that file's deletes change;
 * - format v3: deletion vectors, one Puffin file per commit (`data/dv-<uuid>.puffin`) holding a
 *   `deletion-vector-v1` blob per data file whose deletes changed, plus row lineage
 *   (`first-row-id`/`added-rows` on snapshots, `first_row_id` on data files, `next-row-id`).
 *
 * A commit adds data files, removes data files (compaction, truncation) and replaces a data
 * file's deletes with its full new set. Data and delete manifests are separate. Manifests are
 * carried forward, rewritten when an entry in them leaves (kept as DELETED for that snapshot),
 * and merged by a size-tiered policy so a snapshot never lists more than `maxManifests`. Each
 * commit expires old snapshots (`keepSnapshots`, `maxSnapshotAgeMs`) and trims the metadata log
 * (`previousVersionsMax`), and returns the keys no retained snapshot or metadata file needs any
 * more, for the caller's garbage collector (which checks reader leases before deleting).
 *
 * Partitioned tables: each data file carries its spec id and partition tuple, each manifest
 * holds one spec's files (with `partitions` summaries in the manifest list), and a delete file
 * carries the partition of the data file it applies to.
 */

import { type ParquetWorkerPool, parquetPool } from '../parquet/worker-pool.ts';
import type { NestedField } from '../schema/iceberg-type.ts';
import type { PartitionSpec, PartitionTuple } from '../schema/partition-spec.ts';
import type { SortOrder } from '../schema/sort-order.ts';
import {
  schemaFromIcebergJson,
  schemaToIcebergJson,
  type TableDefinition,
  type TableSchema,
} from '../schema/table-schema.ts';
import {
  icebergDvKey,
  METADATA_DIR,
  manifestKey,
  manifestListKey,
  metadataKeyFor,
  metadataVersion,
  positionDeleteKey,
  tableRootOfMetadata,
  versionHintKey,
} from '../store/object-keys.ts';
import { NotFoundError, type ObjectStore, putRetrying } from '../store/object-store.ts';
import type { Clock } from '../util/clock.ts';
import { type NewId, randomId } from '../util/ids.ts';
import { type AvroDataFile, type AvroManifestFile, CONTENT, MANIFEST_STATUS } from './avro-schemas.ts';
import {
  positionDeleteMetrics,
  readDeletionVectorBlob,
  readPositionDeletes,
  writeDeletionVectors,
  writePositionDeletes,
} from './delete-files.ts';
import {
  decodeManifest,
  decodeManifestList,
  encodeManifest,
  encodeManifestList,
  inheritedRowCount,
  type ManifestSpec,
  type MaterializedEntry,
  manifestFileRecord,
  materializeAdded,
} from './manifest-io.ts';
import { planManifestMerges } from './manifest-merge.ts';
import { partitionFromAvro, partitionToAvro } from './partition-avro.ts';
import { type Content, ReferenceIndex } from './reference-index.ts';
import type { RoaringBitmap64 } from './roaring.ts';
import {
  buildSummary,
  type CommitChanges,
  defaultOperation,
  type Operation,
  type Totals,
  totalsAfter,
  totalsOf,
} from './snapshot-summary.ts';
import { type ColumnStats, fileMetrics, statsFromMetrics } from './stats.ts';
import {
  defaultSortOrderOf,
  defaultSpecOf,
  manifestSpecOf,
  specsOf,
  withDefaultSpec,
} from './table-layout.ts';
import {
  currentSchemaJson,
  currentSnapshotId,
  currentSnapshotOf,
  initialMetadata,
  mergedNameMapping,
  parseTableMetadata,
  type SnapshotJson,
  serializeTableMetadata,
  type TableMetadata,
} from './table-metadata.ts';
import { applyPropertyChanges, type PropertyChange } from './table-properties.ts';

export type { ColumnStats, MaterializedEntry as ManifestEntry, Operation, PropertyChange };

export interface DataFileEntry {
  /** Store key of the Parquet data file (written with Iceberg field ids by the caller). */
  key: string;
  recordCount: number;
  fileSizeBytes: number;
  /** Statistics by top-level field id. */
  columnStats: Map<number, ColumnStats>;
  /** The partition spec the file was written with (default 0) and its tuple under it. */
  specId?: number;
  partition?: PartitionTuple;
  /** The sort order its rows are in (0: unsorted). */
  sortOrderId?: number;
}

export interface IcebergCommitInput {
  addedDataFiles: DataFileEntry[];
  /** Keys of data files leaving the table (compaction, truncation); their deletes leave too. */
  removedDataFiles: string[];
  /**
   * Data file key → the file's FULL set of deleted positions now, for files whose deletes
   * changed since the last commit (null or empty: the file has no deletes any more).
   */
  deletes: Map<string, RoaringBitmap64 | null>;
  /** Extra snapshot summary properties (`moonlink.lsn`, ...). */
  summary: Record<string, string>;
  /** Default: append, delete, overwrite, or replace (files swapped, no delete changes). */
  operation?: Operation;
  /** Table properties to set and remove with this commit (applied in order). */
  properties?: PropertyChange[];
  /** Schema changes (the last one becomes current), added to the metadata's schemas with this commit. */
  schemas?: { added: TableSchema[]; lastColumnId: number };
  /** A new default partition spec (partition evolution): files added from now on may use it. */
  partitioning?: { spec: PartitionSpec; lastPartitionId: number };
}

export interface CommitResult {
  metadataKey: string;
  metadataLocation: string;
  snapshotId: number;
  sequenceNumber: number;
  /**
   * Keys no retained snapshot or metadata file refers to any more (expired manifests and
   * manifest lists, delete and data files, old metadata JSON): for the caller's garbage
   * collector. Never a file a retained snapshot still needs.
   */
  obsoleteKeys: string[];
}

export interface IcebergState {
  dataFiles: (DataFileEntry & { firstRowId?: number })[];
  /** Deleted positions by data file key (only files that have deletes). */
  deletes: Map<string, RoaringBitmap64>;
  summary: Record<string, string>;
  snapshotId?: number;
}

export interface IcebergOptions {
  /** Snapshots kept on each commit (at most), default 20. */
  keepSnapshots?: number;
  /** Snapshots older than this expire on each commit too (the current one never does). */
  maxSnapshotAgeMs?: number;
  /** Earlier metadata files listed in `metadata-log`, default 20. */
  previousVersionsMax?: number;
  /** Manifests at or above this many live entries are merged only to respect `maxManifests`. */
  targetManifestEntries?: number;
  /** Most manifests a snapshot lists, data and delete manifests together (default 8, at least 2). */
  maxManifests?: number;
  /** Parquet encoder for v2 position-delete files (default: the process-wide pool). */
  pool?: ParquetWorkerPool;
  /** Ids in the names of the files a commit writes (default: random UUIDs; seeded in simulations). */
  newId?: NewId;
  /** Back-offs between attempts of a metadata write (default: the system's clock). */
  clock?: Clock;
}

export class IcebergConflictError extends Error {
  readonly code = 'iceberg_conflict';
}

/** A manifest in memory with inherited values filled in, indexed for commits. */
interface LoadedManifest {
  /** Store key of the manifest file. */
  key: string;
  file: AvroManifestFile;
  entries: MaterializedEntry[];
  live: MaterializedEntry[];
  /** Data manifests: live entries by file_path; delete manifests: by referenced_data_file. */
  byPath: Map<string, MaterializedEntry>;
}

/** A manifest of the snapshot being built: carried over unchanged, or to be written. */
type Candidate =
  | { kind: 'kept'; content: number; specId: number; manifest: LoadedManifest }
  | { kind: 'new'; content: number; specId: number; entries: MaterializedEntry[] };
type NewCandidate = Extract<Candidate, { kind: 'new' }>;

const DEFAULTS = {
  keepSnapshots: 20,
  previousVersionsMax: 20,
  targetManifestEntries: 16384,
  maxManifests: 8,
};

const SNAPSHOT_ID_RANGE = 2n ** 53n - 1n;

function isLive(e: { status: number }): boolean {
  return e.status !== MANIFEST_STATUS.DELETED;
}

/** Size a delete entry adds to the table: its blob for a deletion vector, else the file. */
function contentSize(f: AvroDataFile): number {
  return f.content_size_in_bytes ?? f.file_size_in_bytes;
}

export class IcebergTable {
  private readonly manifestCache = new Map<string, LoadedManifest>();
  private readonly listCache = new Map<string, AvroManifestFile[]>();
  private readonly opts: typeof DEFAULTS & { maxSnapshotAgeMs?: number };
  private readonly pool: ParquetWorkerPool;
  private readonly newId: NewId;
  private readonly clock: Clock | undefined;
  private index: ReferenceIndex | undefined;
  private schemaCache: TableSchema | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: ObjectStore,
    readonly tableRoot: string,
    private meta: TableMetadata,
    private key: string,
    options: IcebergOptions,
  ) {
    this.opts = {
      keepSnapshots: Math.max(1, options.keepSnapshots ?? DEFAULTS.keepSnapshots),
      previousVersionsMax: Math.max(0, options.previousVersionsMax ?? DEFAULTS.previousVersionsMax),
      targetManifestEntries: Math.max(2, options.targetManifestEntries ?? DEFAULTS.targetManifestEntries),
      maxManifests: Math.max(2, options.maxManifests ?? DEFAULTS.maxManifests),
      maxSnapshotAgeMs: options.maxSnapshotAgeMs,
    };
    this.pool = options.pool ?? parquetPool();
    this.newId = options.newId ?? randomId;
    this.clock = options.clock;
  }

  get metadata(): TableMetadata {
    return this.meta;
  }

  get metadataKey(): string {
    return this.key;
  }

  get formatVersion(): 2 | 3 {
    return this.meta['format-version'];
  }

  metadataLocation(): string {
    return this.store.uri(this.key);
  }

  currentSnapshot(): SnapshotJson | undefined {
    return currentSnapshotOf(this.meta);
  }

  /** The current schema. */
  schema(): TableSchema {
    if (this.schemaCache?.schemaId !== this.meta['current-schema-id'])
      this.schemaCache = schemaFromIcebergJson(currentSchemaJson(this.meta));
    return this.schemaCache;
  }

  /** Every schema the metadata keeps (the current one among them), oldest first. */
  schemas(): TableSchema[] {
    return this.meta.schemas.map(schemaFromIcebergJson);
  }

  /** The highest field id the table ever used. */
  get lastColumnId(): number {
    return this.meta['last-column-id'];
  }

  /** The partition spec new data files are written with. */
  spec(): PartitionSpec {
    return defaultSpecOf(this.meta);
  }

  /** Every partition spec of the table, by id. */
  specs(): Map<number, PartitionSpec> {
    return specsOf(this.meta);
  }

  get lastPartitionId(): number {
    return this.meta['last-partition-id'];
  }

  /** The sort order new data files are written in. */
  sortOrder(): SortOrder {
    return defaultSortOrderOf(this.meta);
  }

  // ------------------------------------------------------------------ create / load

  /** Writes `metadata/v1.metadata.json` (no snapshot) and the version hint. */
  static async create(
    store: ObjectStore,
    tableRoot: string,
    def: TableDefinition,
    options: IcebergOptions = {},
  ): Promise<IcebergTable> {
    const meta = initialMetadata(def, store.uri(tableRoot), {
      previousVersionsMax: options.previousVersionsMax ?? DEFAULTS.previousVersionsMax,
    });
    const t = new IcebergTable(store, tableRoot, meta, metadataKeyFor(tableRoot, 1), options);
    await t.writeMetadata(t.key, meta);
    return t;
  }

  static async load(
    store: ObjectStore,
    metadataKey: string,
    options: IcebergOptions = {},
  ): Promise<IcebergTable> {
    const meta = parseTableMetadata(new TextDecoder().decode(await store.get(metadataKey)), metadataKey);
    const root = tableRootOfMetadata(metadataKey);
    if (!root) throw new Error(`${metadataKey}: a metadata file lives in <table root>/${METADATA_DIR}/`);
    return new IcebergTable(store, root, meta, metadataKey, options);
  }

  /** The newest metadata file: the highest of version-hint.text and the vN files listed. */
  static async loadLatest(
    store: ObjectStore,
    tableRoot: string,
    options: IcebergOptions = {},
  ): Promise<IcebergTable | undefined> {
    let best: number | undefined;
    try {
      const hint = Number(new TextDecoder().decode(await store.get(versionHintKey(tableRoot))).trim());
      if (Number.isInteger(hint) && hint > 0 && (await store.head(metadataKeyFor(tableRoot, hint)))) {
        best = hint;
      }
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    for await (const o of store.list(`${tableRoot}/${METADATA_DIR}/v`)) {
      const v = metadataVersion(o.key);
      if (v !== undefined && (best === undefined || v > best)) best = v;
    }
    if (best === undefined) return undefined;
    return IcebergTable.load(store, metadataKeyFor(tableRoot, best), options);
  }

  private async writeMetadata(key: string, meta: TableMetadata): Promise<void> {
    try {
      await this.store.put(key, serializeTableMetadata(meta), {
        ifNoneMatch: true,
        contentType: 'application/json',
      });
    } catch (e) {
      if ((e as { code?: string }).code === 'precondition_failed') {
        throw new IcebergConflictError(
          `${key} already exists: another writer committed to this table; reload it and retry`,
        );
      }
      throw e;
    }
    const v = metadataVersion(key);
    if (v === undefined) return;
    try {
      await this.store.put(versionHintKey(this.tableRoot), new TextEncoder().encode(String(v)));
    } catch {
      // The hint only speeds up finding the newest version; loadLatest also lists metadata/.
    }
  }

  // ------------------------------------------------------------------ reading manifests

  private keyOf(location: string): string {
    const k = this.store.keyFromUri(location);
    if (k === undefined) {
      throw new Error(`${location} is outside this table's object store (${this.store.description})`);
    }
    return k;
  }

  /** What a live entry holds, for the reference index: a file, or one DV blob in a Puffin file. */
  private contentOf(e: MaterializedEntry): Content {
    const key = this.keyOf(e.data_file.file_path);
    const offset = e.data_file.content_offset;
    return { id: offset === null || offset === undefined ? key : `${key}#${offset}`, key };
  }

  private async manifestList(location: string): Promise<AvroManifestFile[]> {
    let l = this.listCache.get(location);
    if (!l) {
      const key = this.keyOf(location);
      l = decodeManifestList(await this.store.get(key), key);
      this.listCache.set(location, l);
    }
    return l;
  }

  private loaded(key: string, file: AvroManifestFile, entries: MaterializedEntry[]): LoadedManifest {
    const live = entries.filter(isLive);
    const byPath = new Map<string, MaterializedEntry>();
    const data = file.content === CONTENT.DATA;
    for (const e of live) {
      const path = data ? e.data_file.file_path : e.data_file.referenced_data_file;
      if (path) byPath.set(path, e);
    }
    return { key, file, entries, live, byPath };
  }

  private async manifest(file: AvroManifestFile): Promise<LoadedManifest> {
    let m = this.manifestCache.get(file.manifest_path);
    if (!m) {
      const key = this.keyOf(file.manifest_path);
      m = this.loaded(key, file, decodeManifest(await this.store.get(key), file, key));
      this.manifestCache.set(file.manifest_path, m);
    }
    return m;
  }

  private async manifestsOf(s: SnapshotJson | undefined): Promise<LoadedManifest[]> {
    if (!s) return [];
    const files = await this.manifestList(s['manifest-list']);
    const out: LoadedManifest[] = [];
    for (let i = 0; i < files.length; i += 16) {
      out.push(...(await Promise.all(files.slice(i, i + 16).map((f) => this.manifest(f)))));
    }
    return out;
  }

  /** The reference index of the retained snapshots, built from their manifests on first use. */
  private async ensureIndex(): Promise<ReferenceIndex> {
    if (this.index) return this.index;
    const snapshots = [...this.meta.snapshots].sort((a, b) => a['sequence-number'] - b['sequence-number']);
    const live = new Map<string, Content>();
    const indexed = [];
    for (const s of snapshots) {
      const id = s['snapshot-id'];
      const manifests = await this.manifestsOf(s);
      const deleted: Content[] = [];
      for (const m of manifests) {
        for (const e of m.live) {
          const c = this.contentOf(e);
          live.set(c.id, c);
        }
        if (m.file.added_snapshot_id !== id) continue;
        for (const e of m.entries) {
          if (e.status === MANIFEST_STATUS.DELETED && e.snapshot_id === id) deleted.push(this.contentOf(e));
        }
      }
      indexed.push({
        id,
        listKey: this.keyOf(s['manifest-list']),
        manifestKeys: manifests.map((m) => m.key),
        added: [],
        deleted,
      });
    }
    this.index = ReferenceIndex.build(indexed, live.values());
    return this.index;
  }

  /** Live manifest entries (data and delete files) of the current snapshot, materialized. */
  async liveEntries(): Promise<MaterializedEntry[]> {
    const out: MaterializedEntry[] = [];
    for (const m of await this.manifestsOf(this.currentSnapshot())) out.push(...m.live);
    return out;
  }

  /** The current snapshot's live data files and their deletes (recovery). */
  async currentState(): Promise<IcebergState> {
    const s = this.currentSnapshot();
    const fields = this.schema().fields;
    const partTypes = new Map<number, NestedField[]>();
    const partTypeOf = (specId: number): NestedField[] => {
      let t = partTypes.get(specId);
      if (!t) {
        t = manifestSpecOf(this.meta, specId, fields).partType;
        partTypes.set(specId, t);
      }
      return t;
    };
    const dataFiles: (DataFileEntry & { firstRowId?: number })[] = [];
    const dataSeq = new Map<string, number>();
    const deleteEntries: MaterializedEntry[] = [];
    for (const m of await this.manifestsOf(s)) {
      for (const e of m.live) {
        const d = e.data_file;
        if (d.content !== CONTENT.DATA) {
          if (d.content === CONTENT.POSITION_DELETES) deleteEntries.push(e);
          continue;
        }
        dataSeq.set(d.file_path, e.sequence_number);
        const f: DataFileEntry & { firstRowId?: number } = {
          key: this.keyOf(d.file_path),
          recordCount: d.record_count,
          fileSizeBytes: d.file_size_in_bytes,
          columnStats: statsFromMetrics(fields, d),
          specId: m.file.partition_spec_id,
          partition: partitionFromAvro(partTypeOf(m.file.partition_spec_id), d.partition),
          sortOrderId: d.sort_order_id ?? 0,
        };
        if (d.first_row_id !== null && d.first_row_id !== undefined) f.firstRowId = d.first_row_id;
        dataFiles.push(f);
      }
    }
    const deletes = new Map<string, RoaringBitmap64>();
    const apply = (dataUri: string, bm: RoaringBitmap64, deleteSeq: number): void => {
      const seq = dataSeq.get(dataUri);
      // A position delete applies to data files whose data sequence number is ≤ its own.
      if (seq === undefined || seq > deleteSeq || bm.isEmpty()) return;
      const k = this.keyOf(dataUri);
      const cur = deletes.get(k);
      if (cur) cur.orInPlace(bm);
      else deletes.set(k, bm);
    };
    for (let i = 0; i < deleteEntries.length; i += 16) {
      await Promise.all(
        deleteEntries.slice(i, i + 16).map(async (e) => {
          const d = e.data_file;
          const key = this.keyOf(d.file_path);
          if (d.file_format.toUpperCase() === 'PUFFIN') {
            const offset = d.content_offset;
            const size = d.content_size_in_bytes;
            if (offset === null || offset === undefined || !size || !d.referenced_data_file) {
              throw new Error(`${key}: a deletion vector entry needs content_offset, size and data file`);
            }
            const blob = await this.store.getRange(key, offset, size);
            apply(d.referenced_data_file, readDeletionVectorBlob(blob, key), e.sequence_number);
          } else {
            const bytes = await this.store.get(key);
            for (const [path, bm] of await readPositionDeletes(this.pool, bytes, key)) {
              apply(path, bm, e.sequence_number);
            }
          }
        }),
      );
    }
    return { dataFiles, deletes, summary: s?.summary ?? {}, snapshotId: s?.['snapshot-id'] };
  }

  // ------------------------------------------------------------------ referenced keys

  private metadataKeys(meta: TableMetadata, metadataKey: string): Set<string> {
    const keys = new Set<string>([metadataKey]);
    for (const l of meta['metadata-log']) {
      const k = this.store.keyFromUri(l['metadata-file']);
      if (k) keys.add(k);
    }
    return keys;
  }

  /**
   * Every object key the current metadata file or a retained snapshot refers to: metadata files
   * (current and metadata-log), the version hint, manifest lists, manifests, and the data and
   * delete files live in any retained snapshot. Anything else under the table root is an orphan.
   */
  referencedKeys(): Promise<Set<string>> {
    return this.exclusive(async () => {
      const keys = (await this.ensureIndex()).keys();
      for (const k of this.metadataKeys(this.meta, this.key)) keys.add(k);
      keys.add(versionHintKey(this.tableRoot));
      return keys;
    });
  }

  // ------------------------------------------------------------------ commit

  /** Commits one snapshot. Throws {@link IcebergConflictError} when the next metadata version exists. */
  commit(input: IcebergCommitInput): Promise<CommitResult> {
    return this.exclusive(() => this.commitNow(input));
  }

  /**
   * Changes table properties only: a new metadata file with the same snapshots. Throws
   * {@link IcebergConflictError} when the next metadata version exists.
   */
  updateProperties(
    changes: PropertyChange[],
    now = Date.now(),
    schemas?: { added: TableSchema[]; lastColumnId: number },
    partitioning?: IcebergCommitInput['partitioning'],
  ): Promise<CommitResult> {
    return this.exclusive(async () => {
      const prev = this.meta;
      const at = Math.max(now, prev['last-updated-ms']);
      const nextKey = metadataKeyFor(this.tableRoot, (metadataVersion(this.key) ?? 0) + 1);
      const evolved = schemas ? withSchemas(prev, schemas.added, schemas.lastColumnId) : {};
      const layout = partitioning
        ? withDefaultSpec(prev, partitioning.spec, partitioning.lastPartitionId)
        : {};
      const meta = this.nextMetadata(prev, at, prev.snapshots, {
        ...evolved,
        ...layout,
        properties: applyPropertyChanges(evolved.properties ?? prev.properties, changes),
      });
      await this.writeMetadata(nextKey, meta);
      const obsoleteKeys = this.install(prev, this.key, meta, nextKey);
      return {
        metadataKey: nextKey,
        metadataLocation: this.store.uri(nextKey),
        snapshotId: currentSnapshotId(meta) ?? 0,
        sequenceNumber: meta['last-sequence-number'],
        obsoleteKeys,
      };
    });
  }

  /** Commits and expirations run one at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private newSnapshotId(): number {
    const taken = new Set(this.meta.snapshots.map((s) => s['snapshot-id']));
    for (;;) {
      // 64 bits of a fresh id (random, or seeded in simulations; a UUID fixes 4 of them).
      const id = Number(
        (BigInt(`0x${this.newId().replace(/-/g, '').slice(0, 16)}`) % SNAPSHOT_ID_RANGE) + 1n,
      );
      if (!taken.has(id)) return id;
    }
  }

  private async commitNow(input: IcebergCommitInput): Promise<CommitResult> {
    const prev = this.meta;
    const fv = prev['format-version'];
    const v3 = fv >= 3;
    const index = await this.ensureIndex();
    const parent = this.currentSnapshot();
    const current = await this.manifestsOf(parent);
    const now = Math.max(Date.now(), prev['last-updated-ms']);
    const seq = prev['last-sequence-number'] + 1;
    const snapshotId = this.newSnapshotId();
    const commitId = this.newId();
    const uri = (k: string): string => this.store.uri(k);

    const find = (
      content: 'data' | 'deletes',
      path: string,
    ): [LoadedManifest, MaterializedEntry] | undefined => {
      for (const m of current) {
        if ((m.file.content === CONTENT.DATA) !== (content === 'data')) continue;
        const e = m.byPath.get(path);
        if (e) return [m, e];
      }
      return undefined;
    };
    const changes: CommitChanges = {
      addedDataFiles: input.addedDataFiles.length,
      deletedDataFiles: 0,
      addedRecords: 0,
      deletedRecords: 0,
      addedDeleteFiles: 0,
      removedDeleteFiles: 0,
      addedPositionDeletes: 0,
      removedPositionDeletes: 0,
      addedFilesSize: 0,
      removedFilesSize: 0,
      manifestsCreated: 0,
      manifestsKept: 0,
      manifestsReplaced: 0,
    };

    // ---- what leaves, checked against the current snapshot
    const leaving = new Map<LoadedManifest, Set<MaterializedEntry>>();
    const deletedContents: Content[] = [];
    const leave = ([m, e]: [LoadedManifest, MaterializedEntry]): void => {
      const set = leaving.get(m) ?? new Set<MaterializedEntry>();
      leaving.set(m, set);
      set.add(e);
      deletedContents.push(this.contentOf(e));
    };
    const removed = new Set<string>();
    for (const k of input.removedDataFiles) {
      const u = uri(k);
      if (removed.has(u)) continue;
      const hit = find('data', u);
      if (!hit) throw new Error(`cannot remove ${k}: it is not a live data file of ${this.tableRoot}`);
      removed.add(u);
      leave(hit);
      changes.deletedDataFiles++;
      changes.deletedRecords += hit[1].data_file.record_count;
      changes.removedFilesSize += hit[1].data_file.file_size_in_bytes;
    }
    const added = new Set<string>();
    for (const f of input.addedDataFiles) {
      const u = uri(f.key);
      if (added.has(u) || find('data', u)) throw new Error(`cannot add ${f.key}: it is already in the table`);
      added.add(u);
    }
    const newDeletes: { dataFileUri: string; positions: RoaringBitmap64 }[] = [];
    const deleteTargets = new Set<string>(removed);
    for (const [k, bm] of input.deletes) {
      const u = uri(k);
      if (removed.has(u)) continue; // its deletes leave with it
      if (!added.has(u) && !find('data', u)) {
        throw new Error(`deletes for ${k}, which is not a live data file of ${this.tableRoot}`);
      }
      deleteTargets.add(u);
      if (bm && !bm.isEmpty()) newDeletes.push({ dataFileUri: u, positions: bm });
    }
    for (const u of deleteTargets) {
      const hit = find('deletes', u);
      if (!hit) continue;
      leave(hit);
      changes.removedDeleteFiles++;
      changes.removedPositionDeletes += hit[1].data_file.record_count;
      changes.removedFilesSize += contentSize(hit[1].data_file);
    }

    const written: string[] = [];
    // New objects under fresh keys: a failed put is simply tried again (as an SDK would), so
    // one transient error does not fail a commit that writes dozens of files.
    const put = async (key: string, bytes: Uint8Array): Promise<void> => {
      written.push(key);
      await putRetrying(this.store, key, bytes, this.clock);
    };
    const addedEntry = (data: AvroDataFile): MaterializedEntry => ({
      status: MANIFEST_STATUS.ADDED,
      snapshot_id: snapshotId,
      sequence_number: seq,
      file_sequence_number: seq,
      data_file: data,
    });
    // The metadata this commit writes: schema and partition changes first, as entries need them.
    const evolved = input.schemas ? withSchemas(prev, input.schemas.added, input.schemas.lastColumnId) : {};
    const layout = input.partitioning
      ? withDefaultSpec(prev, input.partitioning.spec, input.partitioning.lastPartitionId)
      : {};
    const metaNow: TableMetadata = { ...prev, ...evolved, ...layout };
    const fieldsNow = schemaFromIcebergJson(currentSchemaJson(metaNow)).fields;
    const specs = new Map<number, ManifestSpec>();
    const specOf = (id: number): ManifestSpec => {
      let sp = specs.get(id);
      if (!sp) {
        sp = manifestSpecOf(metaNow, id, fieldsNow);
        specs.set(id, sp);
      }
      return sp;
    };
    try {
      const fields = this.schema().fields;
      /** Added data files by URI, with their spec: a delete file carries its data file's partition. */
      const addedByPath = new Map<string, { specId: number; data: AvroDataFile }>();
      const dataEntries = input.addedDataFiles.map((df) => {
        const f = emptyDataFile(CONTENT.DATA, uri(df.key), 'PARQUET', df.recordCount, df.fileSizeBytes);
        const specId = df.specId ?? 0;
        f.partition = partitionToAvro(specOf(specId).partType, df.partition ?? []);
        addedByPath.set(f.file_path, { specId, data: f });
        const m = fileMetrics(fields, df.columnStats);
        f.value_counts = m.valueCounts;
        f.null_value_counts = m.nullValueCounts;
        f.nan_value_counts = m.nanValueCounts.length > 0 ? m.nanValueCounts : null;
        f.lower_bounds = m.lowerBounds;
        f.upper_bounds = m.upperBounds;
        f.sort_order_id = df.sortOrderId ?? 0;
        changes.addedRecords += df.recordCount;
        changes.addedFilesSize += df.fileSizeBytes;
        return addedEntry(f);
      });
      const specOfData = (u: string): { specId: number; partition: Record<string, unknown> } => {
        const added = addedByPath.get(u);
        if (added) return { specId: added.specId, partition: added.data.partition };
        const hit = find('data', u);
        return hit
          ? { specId: hit[0].file.partition_spec_id, partition: hit[1].data_file.partition }
          : { specId: 0, partition: {} };
      };

      // ---- new delete files, then their entries (in the partition of the file they apply to)
      const deleteEntries: MaterializedEntry[] = [];
      const deleteSpecs = new Map<MaterializedEntry, number>();
      for (const f of await this.writeDeleteFiles(newDeletes, put)) {
        const target = specOfData(f.referenced_data_file ?? '');
        f.partition = target.partition;
        const e = addedEntry(f);
        deleteSpecs.set(e, target.specId);
        deleteEntries.push(e);
        changes.addedDeleteFiles++;
        changes.addedPositionDeletes += f.record_count;
        changes.addedFilesSize += contentSize(f);
      }

      // ---- the manifests of the new snapshot: one spec per manifest
      const candidates: Candidate[] = [];
      const bySpec = (entries: MaterializedEntry[], specIdOf: (e: MaterializedEntry) => number) => {
        const groups = new Map<number, MaterializedEntry[]>();
        for (const e of entries) {
          const id = specIdOf(e);
          const g = groups.get(id);
          if (g) g.push(e);
          else groups.set(id, [e]);
        }
        return groups;
      };
      for (const [specId, entries] of bySpec(
        dataEntries,
        (e) => addedByPath.get(e.data_file.file_path)!.specId,
      ))
        candidates.push({ kind: 'new', content: CONTENT.DATA, specId, entries });
      for (const [specId, entries] of bySpec(deleteEntries, (e) => deleteSpecs.get(e)!))
        candidates.push({ kind: 'new', content: CONTENT.POSITION_DELETES, specId, entries });
      for (const m of current) {
        const out = leaving.get(m);
        const specId = m.file.partition_spec_id;
        if (out) {
          candidates.push({
            kind: 'new',
            content: m.file.content,
            specId,
            entries: rewritten(m, out, snapshotId),
          });
        } else if (m.live.length > 0) {
          candidates.push({ kind: 'kept', content: m.file.content, specId, manifest: m });
        }
        // (A manifest left with only DELETED entries of an earlier snapshot is dropped.)
      }
      const merged = this.merge(candidates);
      const fresh = merged.filter((c): c is NewCandidate => c.kind === 'new');
      const kept = merged.flatMap((c) => (c.kind === 'kept' ? [c.manifest] : []));
      changes.manifestsCreated = fresh.length;
      changes.manifestsKept = kept.length;
      changes.manifestsReplaced = current.length - kept.length;

      // ---- write the new manifests, assign row ids (v3), write the manifest list
      const ctx = {
        formatVersion: fv,
        schemaJson: JSON.stringify(currentSchemaJson(metaNow)),
        schemaId: metaNow['current-schema-id'],
      };
      const newManifests = await Promise.all(
        fresh.map(async (c, k) => {
          const key = manifestKey(this.tableRoot, commitId, k);
          const spec = specOf(c.specId);
          const bytes = encodeManifest({ ...ctx, spec }, c.content, c.entries);
          await put(key, bytes);
          const file = manifestFileRecord(
            uri(key),
            bytes.length,
            c.content,
            c.entries,
            snapshotId,
            seq,
            spec,
          );
          return { key, c, file };
        }),
      );
      const firstRowId = v3 ? (prev['next-row-id'] ?? 0) : 0;
      let nextRowId = firstRowId;
      if (v3) {
        for (const n of newManifests) {
          if (n.c.content !== CONTENT.DATA) {
            n.file.first_row_id = null;
            continue;
          }
          n.file.first_row_id = nextRowId;
          nextRowId += inheritedRowCount(n.c.entries);
        }
      }
      const listFiles = [...newManifests.map((n) => n.file), ...kept.map((m) => m.file)];
      const listKey = manifestListKey(this.tableRoot, snapshotId, commitId);
      await put(
        listKey,
        encodeManifestList(fv, listFiles, {
          snapshotId,
          parentSnapshotId: parent?.['snapshot-id'],
          sequenceNumber: seq,
          firstRowId: v3 ? firstRowId : undefined,
        }),
      );

      // ---- the snapshot
      const deletesChanged = input.deletes.size > 0;
      const operation = input.operation ?? defaultOperation(changes, deletesChanged);
      const totals = totalsAfter(this.totalsBefore(parent, current), changes);
      const snapshot: SnapshotJson = {
        'snapshot-id': snapshotId,
        'sequence-number': seq,
        'timestamp-ms': now,
        'manifest-list': uri(listKey),
        summary: buildSummary(operation, changes, totals, fv, input.summary),
        'schema-id': metaNow['current-schema-id'],
      };
      if (parent) snapshot['parent-snapshot-id'] = parent['snapshot-id'];
      if (v3) {
        snapshot['first-row-id'] = firstRowId;
        snapshot['added-rows'] = nextRowId - firstRowId;
      }

      // ---- the metadata file
      const snapshots = retain(
        [...prev.snapshots, snapshot],
        snapshotId,
        this.opts.keepSnapshots,
        now,
        this.opts.maxSnapshotAgeMs,
      );
      const nextKey = metadataKeyFor(this.tableRoot, (metadataVersion(this.key) ?? 0) + 1);
      const meta = this.nextMetadata(prev, now, snapshots, {
        'last-sequence-number': seq,
        'current-snapshot-id': snapshotId,
        refs: { ...prev.refs, main: { 'snapshot-id': snapshotId, type: 'branch' } },
        'snapshot-log': [...prev['snapshot-log'], { 'timestamp-ms': now, 'snapshot-id': snapshotId }],
        ...(v3 ? { 'next-row-id': nextRowId } : {}),
        ...evolved,
        ...layout,
        ...(input.properties
          ? { properties: applyPropertyChanges(evolved.properties ?? prev.properties, input.properties) }
          : {}),
      });
      await this.writeMetadata(nextKey, meta);

      // ---- committed: bring memory up to date
      const loadedNew = newManifests.map((n) => {
        const rowId = v3 && n.c.content === CONTENT.DATA ? (n.file.first_row_id ?? null) : null;
        const m = this.loaded(n.key, n.file, materializeAdded(n.c.entries, seq, rowId));
        this.manifestCache.set(n.file.manifest_path, m);
        return m;
      });
      this.listCache.set(uri(listKey), listFiles);
      index.add({
        id: snapshotId,
        listKey,
        manifestKeys: [...loadedNew, ...kept].map((m) => m.key),
        added: [...dataEntries, ...deleteEntries].map((e) => this.contentOf(e)),
        deleted: deletedContents,
      });
      const obsoleteKeys = this.install(prev, this.key, meta, nextKey);
      return {
        metadataKey: nextKey,
        metadataLocation: uri(nextKey),
        snapshotId,
        sequenceNumber: seq,
        obsoleteKeys,
      };
    } catch (e) {
      if (e instanceof IcebergConflictError) {
        // Nothing refers to what this attempt wrote; the caller reloads and retries.
        await this.store.deleteMany(written).catch(() => undefined);
      }
      throw e;
    }
  }

  /**
   * Writes the delete files for changed deletes and returns their `data_file` structs: v3, one
   * Puffin file with a deletion vector per data file; v2, a position-delete file per data file.
   */
  private async writeDeleteFiles(
    deletes: { dataFileUri: string; positions: RoaringBitmap64 }[],
    put: (key: string, bytes: Uint8Array) => Promise<void>,
  ): Promise<AvroDataFile[]> {
    if (deletes.length === 0) return [];
    if (this.formatVersion >= 3) {
      const key = icebergDvKey(this.tableRoot, this.newId());
      const { bytes, blobs } = writeDeletionVectors(deletes);
      await put(key, bytes);
      const location = this.store.uri(key);
      return deletes.map((d, i) => {
        const f = emptyDataFile(CONTENT.POSITION_DELETES, location, 'PUFFIN', d.positions.size, bytes.length);
        f.referenced_data_file = d.dataFileUri;
        f.content_offset = blobs[i].offset;
        f.content_size_in_bytes = blobs[i].length;
        return f;
      });
    }
    return Promise.all(
      deletes.map(async (d) => {
        const key = positionDeleteKey(this.tableRoot, this.newId());
        const bytes = await writePositionDeletes(this.pool, d.dataFileUri, d.positions);
        await put(key, bytes);
        const f = emptyDataFile(
          CONTENT.POSITION_DELETES,
          this.store.uri(key),
          'PARQUET',
          d.positions.size,
          bytes.length,
        );
        const m = positionDeleteMetrics(d.dataFileUri, d.positions);
        f.referenced_data_file = d.dataFileUri;
        f.value_counts = m.valueCounts;
        f.null_value_counts = m.nullValueCounts;
        f.lower_bounds = m.lowerBounds;
        f.upper_bounds = m.upperBounds;
        return f;
      }),
    );
  }

  /**
   * Merges candidates so there are at most maxManifests in all: delete manifests get half the
   * budget, data manifests the rest. Kept manifests merged into a new one contribute their live
   * entries as EXISTING (their DELETED entries of earlier snapshots are dropped).
   */
  private merge(candidates: Candidate[]): Candidate[] {
    const liveCount = (c: Candidate): number =>
      c.kind === 'kept' ? c.manifest.live.length : c.entries.reduce((n, e) => n + (isLive(e) ? 1 : 0), 0);
    const mergeGroup = (group: Candidate[], limit: number, carry: boolean): Candidate[] => {
      const plan = planManifestMerges(
        group.map((c) => ({ liveEntries: liveCount(c), written: c.kind === 'new' })),
        { maxCount: limit, targetEntries: this.opts.targetManifestEntries, carry },
      );
      const inPlan = new Set(plan.flat());
      const out: Candidate[] = plan.map((members) => ({
        kind: 'new',
        content: group[members[0]].content,
        specId: group[members[0]].specId,
        entries: members.flatMap((i) => {
          const c = group[i];
          return c.kind === 'new' ? c.entries : c.manifest.live.map(asExisting);
        }),
      }));
      group.forEach((c, i) => {
        if (!inPlan.has(i)) out.push(c);
      });
      // New manifests first, then the kept ones in their previous order (as Java lists them).
      return [...out.filter((c) => c.kind === 'new'), ...out.filter((c) => c.kind === 'kept')];
    };
    // A manifest holds one partition spec's files: each spec's manifests merge among themselves,
    // sharing their content's budget.
    const perSpec = (group: Candidate[], limit: number, carry: boolean): Candidate[] => {
      const ids = [...new Set(group.map((c) => c.specId))].sort((a, b) => b - a);
      const each = Math.max(1, Math.floor(limit / Math.max(1, ids.length)));
      return ids.flatMap((id) =>
        mergeGroup(
          group.filter((c) => c.specId === id),
          each,
          carry,
        ),
      );
    };
    const deletes = perSpec(
      candidates.filter((c) => c.content !== CONTENT.DATA),
      Math.max(1, Math.floor(this.opts.maxManifests / 2)),
      false,
    );
    const data = perSpec(
      candidates.filter((c) => c.content === CONTENT.DATA),
      Math.max(1, this.opts.maxManifests - deletes.length),
      true,
    );
    return [...data, ...deletes];
  }

  /** Table totals before a commit: the parent's summary totals, or counted if it has none. */
  private totalsBefore(parent: SnapshotJson | undefined, current: LoadedManifest[]): Totals {
    const t = { records: 0, dataFiles: 0, deleteFiles: 0, positionDeletes: 0, filesSize: 0 };
    if (!parent) return t;
    const recorded = totalsOf(parent);
    if (recorded) return recorded;
    for (const m of current) {
      for (const e of m.live) {
        const d = e.data_file;
        if (d.content === CONTENT.DATA) {
          t.records += d.record_count;
          t.dataFiles++;
        } else {
          t.deleteFiles++;
          t.positionDeletes += d.record_count;
        }
        t.filesSize += contentSize(d);
      }
    }
    return t;
  }

  /** The next metadata: retained snapshots, logs trimmed to them and to previousVersionsMax. */
  private nextMetadata(
    prev: TableMetadata,
    now: number,
    snapshots: SnapshotJson[],
    changes: Partial<TableMetadata>,
  ): TableMetadata {
    const retained = new Set(snapshots.map((s) => s['snapshot-id']));
    const metadataLog = [
      ...prev['metadata-log'],
      { 'timestamp-ms': prev['last-updated-ms'], 'metadata-file': this.store.uri(this.key) },
    ];
    const max = this.opts.previousVersionsMax;
    const snapshotLog = changes['snapshot-log'] ?? prev['snapshot-log'];
    return {
      ...prev,
      ...changes,
      'last-updated-ms': now,
      snapshots,
      'snapshot-log': snapshotLog.filter((l) => retained.has(l['snapshot-id'])),
      'metadata-log': max === 0 ? [] : metadataLog.slice(Math.max(0, metadataLog.length - max)),
      properties: {
        ...(changes.properties ?? prev.properties),
        'write.metadata.previous-versions-max': String(max),
      },
    };
  }

  /**
   * Makes `meta` (written at `metaKey`) current in memory, expires dropped snapshots from the
   * reference index and the caches, and returns the keys that became unreferenced.
   */
  private install(prev: TableMetadata, prevKey: string, meta: TableMetadata, metaKey: string): string[] {
    const index = this.index!;
    let obsolete: string[];
    try {
      obsolete = index.expire(new Set(meta.snapshots.map((s) => s['snapshot-id'])));
    } catch {
      // Snapshots another writer left out of chain order: report nothing obsolete (orphan
      // removal by referencedKeys() still finds it) and rebuild the index on next use.
      this.index = undefined;
      this.meta = meta;
      this.key = metaKey;
      this.manifestCache.clear();
      this.listCache.clear();
      return [];
    }
    const after = this.metadataKeys(meta, metaKey);
    for (const k of this.metadataKeys(prev, prevKey)) if (!after.has(k)) obsolete.push(k);
    this.meta = meta;
    this.key = metaKey;
    for (const [path, m] of this.manifestCache)
      if (!index.hasManifest(m.key)) this.manifestCache.delete(path);
    const lists = new Set(meta.snapshots.map((s) => s['manifest-list']));
    for (const l of this.listCache.keys()) if (!lists.has(l)) this.listCache.delete(l);
    return [...new Set(obsolete)];
  }

  // ------------------------------------------------------------------ expiration

  /**
   * Expires snapshots now: keeps at most the newest `keepLast`, and with `olderThanMs` also
   * expires those older than that (the current snapshot always stays). Writes a new metadata
   * file when anything expires; returns the keys that became unreferenced.
   */
  expireSnapshots(opts: {
    keepLast: number;
    olderThanMs?: number;
    now?: number;
  }): Promise<{ metadataKey: string; obsoleteKeys: string[] }> {
    return this.exclusive(async () => {
      await this.ensureIndex();
      const prev = this.meta;
      const now = Math.max(opts.now ?? Date.now(), prev['last-updated-ms']);
      const current = this.currentSnapshot()?.['snapshot-id'];
      const snapshots = retain(prev.snapshots, current, opts.keepLast, now, opts.olderThanMs);
      if (snapshots.length === prev.snapshots.length) return { metadataKey: this.key, obsoleteKeys: [] };
      const nextKey = metadataKeyFor(this.tableRoot, (metadataVersion(this.key) ?? 0) + 1);
      const meta = this.nextMetadata(prev, now, snapshots, {});
      await this.writeMetadata(nextKey, meta);
      return { metadataKey: nextKey, obsoleteKeys: this.install(prev, this.key, meta, nextKey) };
    });
  }
}

/** Snapshots kept: the newest `keep`, minus those older than `maxAgeMs`; `current` always stays. */
function retain(
  snapshots: SnapshotJson[],
  current: number | undefined,
  keep: number,
  now: number,
  maxAgeMs: number | undefined,
): SnapshotJson[] {
  let out = snapshots.slice(Math.max(0, snapshots.length - Math.max(1, keep)));
  if (maxAgeMs !== undefined) {
    const cutoff = now - maxAgeMs;
    out = out.filter((s) => s['snapshot-id'] === current || s['timestamp-ms'] >= cutoff);
  }
  return out;
}

function asExisting(e: MaterializedEntry): MaterializedEntry {
  return e.status === MANIFEST_STATUS.EXISTING ? e : { ...e, status: MANIFEST_STATUS.EXISTING };
}

/** A rewritten manifest: `out` entries become DELETED in `snapshotId`, the rest EXISTING. */
function rewritten(m: LoadedManifest, out: Set<MaterializedEntry>, snapshotId: number): MaterializedEntry[] {
  return m.live.map((e) =>
    out.has(e) ? { ...e, status: MANIFEST_STATUS.DELETED, snapshot_id: snapshotId } : asExisting(e),
  );
}

function emptyDataFile(
  content: number,
  path: string,
  format: string,
  records: number,
  size: number,
): AvroDataFile {
  return {
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
    sort_order_id: null,
    first_row_id: null,
    referenced_data_file: null,
    content_offset: null,
    content_size_in_bytes: null,
  };
}

/**
 * The metadata fields schema changes set: each schema added to `schemas` (kept if there), the
 * last one current, `last-column-id` raised, and the name mapping with the new names (every
 * name a field id had stays mapped, so files written by name-only writers still resolve).
 */
function withSchemas(
  prev: TableMetadata,
  added: TableSchema[],
  lastColumnId: number,
): Partial<TableMetadata> {
  const schemas = [...prev.schemas];
  for (const sc of added)
    if (!schemas.some((x) => x['schema-id'] === sc.schemaId)) schemas.push(schemaToIcebergJson(sc));
  const current = added[added.length - 1];
  return {
    schemas,
    'current-schema-id': current.schemaId,
    'last-column-id': Math.max(prev['last-column-id'], lastColumnId),
    properties: {
      ...prev.properties,
      'schema.name-mapping.default': mergedNameMapping(
        prev.properties['schema.name-mapping.default'],
        current.fields,
      ),
    },
  };
}
