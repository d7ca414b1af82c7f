/**
 * Decoding a JSON transaction in a worker thread (lib/engine/worker-jobs.ts runs it): the
 * request scanner's columns come back as transferred buffers, not as a value per field, and
 * the table's thread only rebuilds the batch around them. A body the worker cannot decode comes
 * back `refused`: the caller decodes it again itself, so every error is the one the same
 * request gets without a worker.
 */
import { type ColumnImage, columnFromImage, imageBuffers } from '../columns/column-buffer.ts';
import { hashKeys, type KeyHashes } from '../schema/key-hash.ts';
import type { TableSchema } from '../schema/table-schema.ts';
import { type DecodedOp, OpBatch, type Operations, type PackedKeys, packKeys } from './op-batch.ts';
import { decodeRequest } from './transaction.ts';

export interface DecodeJob {
  /** Names this schema object for the worker's cache (its decoding plan is made once). */
  schemaKey: string;
  schema: TableSchema;
  bytes: Uint8Array;
  maxOps: number;
}

export type DecodedParts =
  | {
      kind: 'batch';
      length: number;
      kinds: Uint8Array;
      /** One text for all of them (a string per key would be posted one by one). */
      keys: PackedKeys | undefined;
      /** The keys' hashes, made here so the table's thread does not. */
      keyHashes: KeyHashes | undefined;
      images: ColumnImage[];
    }
  | { kind: 'ops'; ops: DecodedOp[] }
  | { kind: 'refused' };

/** The schemas jobs named, so each keeps its row codec and scan plan (both cached per object). */
const schemas = new Map<string, TableSchema>();

function schemaFor(job: DecodeJob): TableSchema {
  let s = schemas.get(job.schemaKey);
  if (!s) {
    if (schemas.size >= 64) schemas.clear();
    s = job.schema;
    schemas.set(job.schemaKey, s);
  }
  return s;
}

/** Decodes a job's body into parts to post back (`refused` on any error). */
export function decodeToParts(job: DecodeJob): DecodedParts {
  let ops: Operations;
  try {
    ops = decodeRequest(schemaFor(job), job.bytes, job.maxOps);
  } catch {
    return { kind: 'refused' };
  }
  if (!(ops instanceof OpBatch)) return { kind: 'ops', ops };
  return {
    kind: 'batch',
    length: ops.length,
    kinds: ops.kinds.slice(0, ops.length),
    keys: ops.keys && packKeys(ops.keys),
    keyHashes: ops.keys && hashKeys(ops.keys),
    images: ops.columns.map((c) => c.image()),
  };
}

/** The operations parts stand for, in `schema` (the one the job was decoded in); undefined if refused. */
export function operationsFromParts(schema: TableSchema, parts: DecodedParts): Operations | undefined {
  if (parts.kind === 'refused') return undefined;
  if (parts.kind === 'ops') return parts.ops;
  return OpBatch.fromParts(
    schema,
    parts.length,
    parts.kinds,
    parts.keys,
    parts.images.map((image, c) => columnFromImage(schema.fields[c].type, image)),
    parts.keyHashes,
  );
}

/** The buffers of a batch's parts, to transfer them. */
export function partsBuffers(parts: DecodedParts): ArrayBuffer[] {
  if (parts.kind !== 'batch') return [];
  const hashes = parts.keyHashes ? [parts.keyHashes.hi.buffer, parts.keyHashes.lo.buffer] : [];
  const ends = parts.keys ? [parts.keys.ends.buffer] : [];
  return [
    ...new Set([
      parts.kinds.buffer as ArrayBuffer,
      ...(hashes as ArrayBuffer[]),
      ...(ends as ArrayBuffer[]),
      ...parts.images.flatMap(imageBuffers),
    ]),
  ];
}

/** This module as a job of a pool's workers (worker-jobs.ts): a message `{ job }`. */
export const workerJob = {
  run: (message: { job: DecodeJob }) => decodeToParts(message.job),
  transfer: partsBuffers,
};
