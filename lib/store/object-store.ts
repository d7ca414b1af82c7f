/**
 * The object store: where data files, deletion vectors, tail files, index files and Iceberg
 * metadata live. Keys are relative to the store's root (a folder, or a bucket and prefix).
 */

import type { Clock } from '../util/clock.ts';
import { RETRY, retrying } from '../util/retry.ts';

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
}

export interface PutOptions {
  /** Fail with {@link PreconditionFailedError} if the key already exists (create-only). */
  ifNoneMatch?: boolean;
  contentType?: string;
  /**
   * The object can be rebuilt after a crash (tail files, read snapshots): a store may skip
   * forcing it to stable storage. Everything a restart needs is written without this.
   */
  ephemeral?: boolean;
}

export interface ObjectStore {
  /** A short name for logs and errors, e.g. `local:/data` or `s3://bucket/prefix`. */
  readonly description: string;
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void>;
  /** Throws {@link NotFoundError} when the key does not exist. */
  get(key: string): Promise<Uint8Array>;
  /** Bytes [offset, offset+length). Throws {@link NotFoundError} when the key does not exist. */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
  deleteMany(keys: string[]): Promise<void>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** The absolute location written into Iceberg metadata (`file:///...`, `s3://...`). */
  uri(key: string): string;
  /** The inverse of {@link uri}; undefined when the location is outside this store. */
  keyFromUri(uri: string): string | undefined;
  /** A URL a reader can fetch the object from (a presigned URL on S3). */
  readUrl(key: string, expiresInSeconds: number): Promise<string>;
}

export class NotFoundError extends Error {
  readonly code = 'not_found';
  constructor(readonly key: string) {
    super(`object not found: ${key}`);
  }
}

/** An object the table's metadata refers to is gone: the table is damaged. */
export class DataFileMissingError extends Error {
  readonly code = 'data_file_missing';
  constructor(
    readonly key: string,
    readonly table?: string,
  ) {
    super(
      `${table ? `table "${table}" refers to ` : ''}object ${key}, which is missing from the object store`,
    );
  }
}

export class PreconditionFailedError extends Error {
  readonly code = 'precondition_failed';
  constructor(readonly key: string) {
    super(`object already exists: ${key}`);
  }
}

const SAFE_KEY = /^[A-Za-z0-9_\-.=/]+$/;

/** Keys are built by the engine, never from raw user input; this guards against mistakes anyway. */
export function assertSafeKey(key: string): void {
  if (
    !SAFE_KEY.test(key) ||
    key.startsWith('/') ||
    key.split('/').some((p) => p === '..' || p === '.' || p === '')
  ) {
    throw new Error(`unsafe object key: ${JSON.stringify(key)}`);
  }
}

export async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out;
}

/**
 * Writes a new, immutable object, trying again on failure (`RETRY.put`). Only for
 * unconditional puts to keys nothing else writes: writing the same bytes twice is harmless.
 */
export function putRetrying(store: ObjectStore, key: string, body: Uint8Array, clock?: Clock): Promise<void> {
  return retrying(RETRY.put, () => store.put(key, body), { clock });
}
