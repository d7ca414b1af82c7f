/**
 * Every object key the system writes, built and parsed here and nowhere else (as SlateDB's
 * `paths.rs`): a table's roots, its data files, tail files, read-snapshot manifests and their
 * deletion vectors, index runs, idempotency records, and the Iceberg metadata, manifests,
 * manifest lists, deletion vectors and position-delete files. `parseObjectKey` tells what any
 * key under a table root is; test/object-keys.test.ts round-trips every builder through it.
 *
 * Object-store layout of a table. A table's objects live under its location, a path relative
 * to `tables/` that is fixed when the table is created and kept when it is renamed. Tables
 * created before locations were stored have none: theirs is derived from the name, as for new
 * tables whose derived place is free — `tables/<name>/` in the default namespace and
 * `tables/<ns>/<name>/` in others (so a namespace may not share its name with a table of the
 * default namespace: lib/namespace-admin.ts refuses that). Where a renamed table still holds
 * the derived place, a new table gets `tables/<ns>__<name>-<uuid>/`: `-` is never part of a
 * name, so no name ever derives a path at or under it.
 */
import { DEFAULT_NAMESPACE, flatTableName, parseTableName } from '../schema/table-name.ts';

/** What a table's paths are built from: a table definition, or any part of one with the name. */
export interface TablePlace {
  name: string;
  location?: string;
}

/** The location a name derives (see the module comment). */
export function derivedLocation(name: string): string {
  const t = parseTableName(name);
  if (!t) throw new Error(`invalid table name ${JSON.stringify(name)}`);
  return t.namespace === DEFAULT_NAMESPACE ? t.name : `${t.namespace}/${t.name}`;
}

/** The table's location relative to `tables/` (its stored one, else the derived one). */
export function locationOf(t: TablePlace): string {
  return t.location ?? derivedLocation(t.name);
}

/** Whether two locations overlap: one is the other or lies under it (a purge of one would delete the other). */
export function locationsOverlap(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/**
 * The location for a new table: the derived one unless a table in `existing` overlaps it (one
 * renamed away from it), then one no name derives.
 */
export function locationForNew(name: string, tableUuid: string, existing: readonly TablePlace[]): string {
  const derived = derivedLocation(name);
  if (!existing.some((t) => locationsOverlap(locationOf(t), derived))) return derived;
  return `${flatTableName(name)}-${tableUuid.replace(/-/g, '').slice(0, 12)}`;
}

/** Where a table's durable objects live: data files, Iceberg metadata, index runs. */
export function tableRootOf(t: TablePlace): string {
  return `tables/${locationOf(t)}`;
}

/**
 * Where a table's short-lived objects live: tail files, read-snapshot manifests and their
 * deletion vectors. The garbage collector removes them; on S3 a lifecycle rule on `tmp/` is the
 * safety net for anything a crash leaves behind.
 */
export function ephemeralRootOf(t: TablePlace): string {
  return `tmp/tables/${locationOf(t)}`;
}

// ----------------------------------------------------------------------------- table objects

/** An object key (relative to the store's root), as the builders here make them. */
export type ObjectKey = string & { readonly __objectKey: unique symbol };

/** A key read back where keys are kept as text (Iceberg metadata, a listing, a manifest). */
export const asObjectKey = (key: string): ObjectKey => key as ObjectKey;

/** A data file's number within its table (its key carries it: `data/00000042-….parquet`). */
export type FileId = number & { readonly __fileId: unique symbol };

/** A number read back where file ids are kept untyped (index runs' arrays, Iceberg summaries). */
export const asFileId = (n: number): FileId => n as FileId;

/** `<root>/data/00000042-<id>.parquet`: a data file; the number is its file id. */
export function dataFileKey(tableRoot: string, fileId: FileId, id: string): ObjectKey {
  return `${tableRoot}/data/${String(fileId).padStart(8, '0')}-${id}.parquet` as ObjectKey;
}

/** `data/00000042-<uuid>.parquet` → 42. */
export function fileIdFromKey(key: string): FileId | undefined {
  const m = /\/data\/(\d{8,10})-[0-9a-f-]+\.parquet$/.exec(key);
  return m ? asFileId(Number(m[1])) : undefined;
}

/** A persisted run of the file index (listed by the Iceberg commit that wrote it). */
export function indexRunKey(tableRoot: string, id: string): ObjectKey {
  return `${tableRoot}/index/${id}.idx` as ObjectKey;
}

/** The idempotency keys an Iceberg commit kept. */
export function idempotencyKey(tableRoot: string, id: string): ObjectKey {
  return `${tableRoot}/idempotency/${id}.json` as ObjectKey;
}

/** A MemSlice segment published as a tail file of a read snapshot. */
export function tailFileKey(ephemeralRoot: string, id: string): ObjectKey {
  return `${ephemeralRoot}/tail/${id}.parquet` as ObjectKey;
}

/** A read snapshot's manifest: named by its LSN (20 digits, so keys sort by LSN) and sequence number. */
export function snapshotManifestKey(ephemeralRoot: string, lsn: bigint, seq: number, id: string): ObjectKey {
  return `${ephemeralRoot}/snapshots/${lsn.toString().padStart(20, '0')}-${seq}-${id.slice(0, 8)}.json` as ObjectKey;
}

/** The Puffin file of a read snapshot's deletion vectors. */
export function snapshotDvKey(ephemeralRoot: string, id: string): ObjectKey {
  return `${ephemeralRoot}/dv/${id}.puffin` as ObjectKey;
}

// ---------------------------------------------------------------------------- Iceberg objects

export const METADATA_DIR = 'metadata';
export const VERSION_HINT = 'version-hint.text';

/** `<root>/metadata/v<N>.metadata.json` (the Hadoop-catalog layout). */
export function metadataKeyFor(tableRoot: string, version: number): ObjectKey {
  return `${tableRoot}/${METADATA_DIR}/v${version}.metadata.json` as ObjectKey;
}

/** `…/metadata/v12.metadata.json` → 12. */
export function metadataVersion(key: string): number | undefined {
  const m = /(?:^|\/)metadata\/v(\d+)\.metadata\.json$/.exec(key);
  return m ? Number(m[1]) : undefined;
}

export function versionHintKey(tableRoot: string): ObjectKey {
  return `${tableRoot}/${METADATA_DIR}/${VERSION_HINT}` as ObjectKey;
}

/** The table root a metadata file belongs to (`<root>/metadata/…`). */
export function tableRootOfMetadata(metadataKey: string): string | undefined {
  const at = metadataKey.lastIndexOf(`/${METADATA_DIR}/`);
  return at > 0 ? metadataKey.slice(0, at) : undefined;
}

/** The `k`-th manifest a commit writes. */
export function manifestKey(tableRoot: string, commitId: string, k: number): ObjectKey {
  return `${tableRoot}/${METADATA_DIR}/${commitId}-m${k}.avro` as ObjectKey;
}

/** A snapshot's manifest list. */
export function manifestListKey(tableRoot: string, snapshotId: number, commitId: string): ObjectKey {
  return `${tableRoot}/${METADATA_DIR}/snap-${snapshotId}-1-${commitId}.avro` as ObjectKey;
}

/** A v3 deletion-vector Puffin file an Iceberg commit writes. */
export function icebergDvKey(tableRoot: string, id: string): ObjectKey {
  return `${tableRoot}/data/dv-${id}.puffin` as ObjectKey;
}

/** A v2 position-delete file an Iceberg commit writes. */
export function positionDeleteKey(tableRoot: string, id: string): ObjectKey {
  return `${tableRoot}/data/delete-${id}.parquet` as ObjectKey;
}

// ------------------------------------------------------------------------------------ parsing

/** What an object under a table's roots is. */
export type ObjectKind =
  | { kind: 'data-file'; fileId: FileId }
  | { kind: 'index-run' }
  | { kind: 'idempotency' }
  | { kind: 'tail-file' }
  | { kind: 'snapshot-manifest'; lsn: bigint; seq: number }
  | { kind: 'snapshot-dv' }
  | { kind: 'metadata'; version: number }
  | { kind: 'version-hint' }
  | { kind: 'manifest' }
  | { kind: 'manifest-list'; snapshotId: number }
  | { kind: 'iceberg-dv' }
  | { kind: 'position-deletes' };

const ID = '[0-9a-zA-Z-]+';
const PATTERNS: [RegExp, (m: RegExpExecArray) => ObjectKind][] = [
  [
    new RegExp(`/data/(\\d{8,10})-${ID}\\.parquet$`),
    (m) => ({ kind: 'data-file', fileId: asFileId(Number(m[1])) }),
  ],
  [new RegExp(`/data/dv-${ID}\\.puffin$`), () => ({ kind: 'iceberg-dv' })],
  [new RegExp(`/data/delete-${ID}\\.parquet$`), () => ({ kind: 'position-deletes' })],
  [new RegExp(`/index/${ID}\\.idx$`), () => ({ kind: 'index-run' })],
  [new RegExp(`/idempotency/${ID}\\.json$`), () => ({ kind: 'idempotency' })],
  [new RegExp(`/tail/${ID}\\.parquet$`), () => ({ kind: 'tail-file' })],
  [
    new RegExp(`/snapshots/(\\d{20})-(\\d+)-${ID}\\.json$`),
    (m) => ({ kind: 'snapshot-manifest', lsn: BigInt(m[1]), seq: Number(m[2]) }),
  ],
  [new RegExp(`/dv/${ID}\\.puffin$`), () => ({ kind: 'snapshot-dv' })],
  [/\/metadata\/v(\d+)\.metadata\.json$/, (m) => ({ kind: 'metadata', version: Number(m[1]) })],
  [/\/metadata\/version-hint\.text$/, () => ({ kind: 'version-hint' })],
  [
    /\/metadata\/snap-(\d+)-1-[0-9a-zA-Z-]+\.avro$/,
    (m) => ({ kind: 'manifest-list', snapshotId: Number(m[1]) }),
  ],
  [/\/metadata\/[0-9a-zA-Z-]+-m\d+\.avro$/, () => ({ kind: 'manifest' })],
];

/** What `key` is, or undefined for a key no builder here makes. */
export function parseObjectKey(key: string): ObjectKind | undefined {
  for (const [re, kind] of PATTERNS) {
    const m = re.exec(key);
    if (m) return kind(m);
  }
  return undefined;
}
