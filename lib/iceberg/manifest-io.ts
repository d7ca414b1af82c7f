/**
 * Manifests and manifest lists as Avro files, with the file-level metadata the spec requires,
 * and the inheritance rules applied on read:
 *
 * - New (ADDED) entries are written with null data/file sequence numbers, and in v3 data
 *   manifests with a null `first_row_id`; readers fill them in from the manifest's entry in the
 *   manifest list ("Sequence Number Inheritance", "First Row ID Inheritance").
 * - EXISTING and DELETED entries are written with every inherited value explicit.
 *
 * Entries handed out by {@link decodeManifest} are materialized: no inherited value is null
 * (except `first_row_id` of delete files and of manifests that have none).
 */
import type { NestedField } from '../schema/iceberg-type.ts';
import {
  type AvroSchemaJson,
  avroTypeOf,
  decodeAvroFile,
  encodeAvroFile,
  encodeAvroFileFromEncoded,
} from './avro-file.ts';
import {
  type AvroDataFile,
  type AvroManifestEntry,
  type AvroManifestFile,
  CONTENT,
  dataFileSchema,
  MANIFEST_STATUS,
  manifestEntrySchema,
  manifestFileSchema,
} from './avro-schemas.ts';
import { partitionAvroFields, partitionFromAvro, partitionSummaries } from './partition-avro.ts';

/**
 * A manifest entry with inherited values filled in. Entries are immutable: they are carried
 * from manifest to manifest as the same objects (their encoding is cached by object).
 *
 * In a manifest being written, status ADDED means "added by this snapshot": such entries are
 * written with null sequence numbers (and, for v3 data files, a null first_row_id) so readers
 * inherit them; EXISTING and DELETED entries are written with every value explicit.
 */
export interface MaterializedEntry extends AvroManifestEntry {
  snapshot_id: number;
  sequence_number: number;
  file_sequence_number: number;
}

export interface ManifestWriteContext {
  formatVersion: 2 | 3;
  /** JSON of the table schema the manifest was written with, and its id. */
  schemaJson: string;
  schemaId: number;
  /** The manifest's partition spec (every entry's); unpartitioned when absent. */
  spec?: ManifestSpec;
}

/** A partition spec as a manifest records it. */
export interface ManifestSpec {
  specId: number;
  /** JSON of the spec's fields (the manifest's `partition-spec` metadata). */
  fieldsJson: string;
  /** The partition type (result types of the spec's fields). */
  partType: NestedField[];
  /** Avro fields of `data_file.partition` for that type. */
  avroFields: Record<string, unknown>[];
}

export function manifestSpec(specId: number, fieldsJson: unknown[], partType: NestedField[]): ManifestSpec {
  return {
    specId,
    fieldsJson: JSON.stringify(fieldsJson),
    partType,
    avroFields: partitionAvroFields(partType),
  };
}

function isLive(e: AvroManifestEntry): boolean {
  return e.status !== MANIFEST_STATUS.DELETED;
}

function dataFileRecord(f: AvroDataFile, formatVersion: 2 | 3): AvroDataFile {
  if (formatVersion >= 3) {
    return {
      ...f,
      first_row_id: f.content === CONTENT.DATA ? (f.first_row_id ?? null) : null,
      content_offset: f.content_offset ?? null,
      content_size_in_bytes: f.content_size_in_bytes ?? null,
    };
  }
  const { first_row_id: _r, content_offset: _o, content_size_in_bytes: _s, ...v2 } = f;
  return v2;
}

/** The leading fields of `manifest_entry`; the entry's encoding is these, then `data_file`'s. */
const ENTRY_HEAD_SCHEMA: AvroSchemaJson = {
  type: 'record',
  name: 'manifest_entry_head',
  fields: [
    { name: 'status', type: 'int' },
    { name: 'snapshot_id', type: ['null', 'long'] },
    { name: 'sequence_number', type: ['null', 'long'] },
    { name: 'file_sequence_number', type: ['null', 'long'] },
  ],
};

interface Encoded {
  formatVersion: number;
  bytes: Uint8Array;
}

/** Encoded `data_file` structs and whole explicit entries, by object. */
const encodedDataFiles = new WeakMap<AvroDataFile, Encoded>();
const encodedEntries = new WeakMap<MaterializedEntry, Encoded>();

function encodeDataFile(
  f: AvroDataFile,
  formatVersion: 2 | 3,
  partition: Record<string, unknown>[],
): Uint8Array {
  const hit = encodedDataFiles.get(f);
  if (hit && hit.formatVersion === formatVersion) return hit.bytes;
  const bytes = avroTypeOf(dataFileSchema(formatVersion, partition)).toBuffer(
    dataFileRecord(f, formatVersion),
  );
  encodedDataFiles.set(f, { formatVersion, bytes });
  return bytes;
}

function encodeHead(e: MaterializedEntry, inherit: boolean): Uint8Array {
  return avroTypeOf(ENTRY_HEAD_SCHEMA).toBuffer({
    status: e.status,
    snapshot_id: e.snapshot_id,
    sequence_number: inherit ? null : e.sequence_number,
    file_sequence_number: inherit ? null : e.file_sequence_number,
  });
}

/** The Avro encoding of one `manifest_entry`, as two chunks (head, data_file). */
function encodeEntry(
  e: MaterializedEntry,
  formatVersion: 2 | 3,
  partition: Record<string, unknown>[],
  out: Uint8Array[],
): void {
  if (e.status === MANIFEST_STATUS.ADDED) {
    out.push(encodeHead(e, true), encodeDataFile(e.data_file, formatVersion, partition));
    return;
  }
  let hit = encodedEntries.get(e);
  if (!hit || hit.formatVersion !== formatVersion) {
    hit = {
      formatVersion,
      bytes: Buffer.concat([encodeHead(e, false), encodeDataFile(e.data_file, formatVersion, partition)]),
    };
    encodedEntries.set(e, hit);
  }
  out.push(hit.bytes);
}

/**
 * Manifest file bytes: an Avro file of `manifest_entry` records with the metadata the spec
 * requires (`schema`, `schema-id`, `partition-spec`, `partition-spec-id`, `format-version`,
 * `content`).
 */
export function encodeManifest(
  ctx: ManifestWriteContext,
  content: number,
  entries: readonly MaterializedEntry[],
): Uint8Array {
  const chunks: Uint8Array[] = [];
  const partition = ctx.spec?.avroFields ?? [];
  for (const e of entries) encodeEntry(e, ctx.formatVersion, partition, chunks);
  const schema = manifestEntrySchema(ctx.formatVersion, partition);
  return encodeAvroFileFromEncoded(schema, chunks, entries.length, {
    schema: ctx.schemaJson,
    'schema-id': String(ctx.schemaId),
    'partition-spec': ctx.spec?.fieldsJson ?? '[]',
    'partition-spec-id': String(ctx.spec?.specId ?? 0),
    'format-version': String(ctx.formatVersion),
    content: content === CONTENT.DATA ? 'data' : 'deletes',
  });
}

/** The manifest-list record of a manifest written in snapshot `snapshotId` at sequence `seq`. */
export function manifestFileRecord(
  path: string,
  length: number,
  content: number,
  entries: readonly MaterializedEntry[],
  snapshotId: number,
  seq: number,
  spec?: ManifestSpec,
): AvroManifestFile {
  const f: AvroManifestFile = {
    manifest_path: path,
    manifest_length: length,
    partition_spec_id: spec?.specId ?? 0,
    content,
    sequence_number: seq,
    min_sequence_number: seq,
    added_snapshot_id: snapshotId,
    added_files_count: 0,
    existing_files_count: 0,
    deleted_files_count: 0,
    added_rows_count: 0,
    existing_rows_count: 0,
    deleted_rows_count: 0,
    partitions:
      spec && spec.partType.length > 0
        ? partitionSummaries(
            spec.partType,
            entries.map((e) => partitionFromAvro(spec.partType, e.data_file.partition)),
          )
        : null,
    key_metadata: null,
  };
  let minSeq = Number.POSITIVE_INFINITY;
  for (const e of entries) {
    const rows = e.data_file.record_count;
    if (e.status === MANIFEST_STATUS.ADDED) {
      f.added_files_count++;
      f.added_rows_count += rows;
    } else if (e.status === MANIFEST_STATUS.EXISTING) {
      f.existing_files_count++;
      f.existing_rows_count += rows;
    } else {
      f.deleted_files_count++;
      f.deleted_rows_count += rows;
    }
    if (isLive(e)) minSeq = Math.min(minSeq, e.status === MANIFEST_STATUS.ADDED ? seq : e.sequence_number);
  }
  if (Number.isFinite(minSeq)) f.min_sequence_number = minSeq;
  return f;
}

/** Rows readers assign row ids to by inheritance in a data manifest (the v3 first_row_id space). */
export function inheritedRowCount(entries: readonly MaterializedEntry[]): number {
  let n = 0;
  for (const e of entries) {
    if (e.data_file.content !== CONTENT.DATA) continue;
    if (e.data_file.first_row_id === null || e.data_file.first_row_id === undefined)
      n += e.data_file.record_count;
  }
  return n;
}

/**
 * The entries of a just-committed manifest as readers will see them: ADDED entries get the
 * snapshot's sequence number and, in v3 data manifests, first row ids from `firstRowId` on.
 */
export function materializeAdded(
  entries: readonly MaterializedEntry[],
  seq: number,
  firstRowId: number | null,
): MaterializedEntry[] {
  let rowId = firstRowId;
  return entries.map((e) => {
    let data = e.data_file;
    const nullRowId = data.first_row_id === null || data.first_row_id === undefined;
    if (rowId !== null && data.content === CONTENT.DATA && nullRowId) {
      data = { ...data, first_row_id: rowId };
      rowId += data.record_count;
    }
    if (e.status !== MANIFEST_STATUS.ADDED && data === e.data_file) return e;
    return e.status === MANIFEST_STATUS.ADDED
      ? { ...e, sequence_number: seq, file_sequence_number: seq, data_file: data }
      : { ...e, data_file: data };
  });
}

export interface ManifestListMeta {
  snapshotId: number;
  parentSnapshotId: number | undefined;
  sequenceNumber: number;
  /** v3: the snapshot's first-row-id. */
  firstRowId?: number;
}

export function encodeManifestList(
  formatVersion: 2 | 3,
  files: AvroManifestFile[],
  meta: ManifestListMeta,
): Uint8Array {
  const header: Record<string, string> = {
    'snapshot-id': String(meta.snapshotId),
    'parent-snapshot-id': meta.parentSnapshotId === undefined ? 'null' : String(meta.parentSnapshotId),
    'sequence-number': String(meta.sequenceNumber),
    'format-version': String(formatVersion),
  };
  if (formatVersion >= 3 && meta.firstRowId !== undefined) header['first-row-id'] = String(meta.firstRowId);
  const records = files.map((f) => {
    if (formatVersion >= 3) return { ...f, first_row_id: f.first_row_id ?? null };
    const { first_row_id: _r, ...v2 } = f;
    return v2;
  });
  return encodeAvroFile(manifestFileSchema(formatVersion), records, header);
}

export function decodeManifestList(bytes: Uint8Array, name: string): AvroManifestFile[] {
  const file = decodeAvroFile(bytes, name);
  return file.records.map((r) => {
    const f = r as unknown as AvroManifestFile;
    if (typeof f.manifest_path !== 'string') throw new Error(`${name}: a manifest list entry has no path`);
    return {
      ...f,
      content: f.content ?? CONTENT.DATA,
      sequence_number: f.sequence_number ?? 0,
      min_sequence_number: f.min_sequence_number ?? 0,
      first_row_id: f.first_row_id ?? null,
    };
  });
}

/** Reads a manifest and fills in inherited snapshot ids, sequence numbers and first row ids. */
export function decodeManifest(bytes: Uint8Array, list: AvroManifestFile, name: string): MaterializedEntry[] {
  const file = decodeAvroFile(bytes, name);
  let nextRowId = list.first_row_id ?? null;
  return file.records.map((r) => {
    const raw = r as unknown as AvroManifestEntry;
    const added = raw.status === MANIFEST_STATUS.ADDED;
    const inherited = (v: number | null | undefined, what: string): number => {
      if (v !== null && v !== undefined) return v;
      if (!added) throw new Error(`${name}: a ${statusName(raw.status)} entry has a null ${what}`);
      return list.sequence_number;
    };
    const data: AvroDataFile = {
      ...raw.data_file,
      first_row_id: raw.data_file.first_row_id ?? null,
      referenced_data_file: raw.data_file.referenced_data_file ?? null,
      content_offset: raw.data_file.content_offset ?? null,
      content_size_in_bytes: raw.data_file.content_size_in_bytes ?? null,
    };
    if (data.content === CONTENT.DATA && data.first_row_id === null && nextRowId !== null) {
      data.first_row_id = nextRowId;
      nextRowId += data.record_count;
    }
    return {
      status: raw.status,
      snapshot_id: raw.snapshot_id ?? list.added_snapshot_id,
      sequence_number: inherited(raw.sequence_number, 'sequence_number'),
      file_sequence_number: inherited(raw.file_sequence_number, 'file_sequence_number'),
      data_file: data,
    };
  });
}

function statusName(status: number): string {
  return status === MANIFEST_STATUS.EXISTING
    ? 'EXISTING'
    : status === MANIFEST_STATUS.DELETED
      ? 'DELETED'
      : 'ADDED';
}
