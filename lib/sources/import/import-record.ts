/**
 * An import's state, kept in the service's store: what `GET /tables/{name}/imports/{id}` shows,
 * and what a restarted writer resumes from. Each update is a new object,
 * `imports/<id>/<version>.json` (the one before it is then deleted), never an overwrite: a store
 * whose puts are not atomic (s3rver under `npm run local`, killed mid-write) may leave the
 * newest one torn, and the one before it is still whole.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { NotFoundError, type ObjectStore } from '../../store/object-store.ts';

export const IMPORT_FORMATS = ['parquet', 'arrow', 'csv', 'ndjson'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** The body of `POST /tables/{name}/imports`. */
export const importRequest = z.strictObject({
  uri: z.string().min(1),
  format: z.enum(IMPORT_FORMATS).optional(),
  op: z.enum(['insert', 'upsert']).optional(),
});
export type ImportRequest = z.infer<typeof importRequest>;

/**
 * queued → running → committing → committed, or failed. `committing`: every row is streamed to
 * the table and the commit marker is going into its log; `committed`: the rows are in an
 * Iceberg commit.
 */
export type ImportState = 'queued' | 'running' | 'committing' | 'committed' | 'failed';

export interface ImportRecord {
  id: string;
  table: string;
  uri: string;
  format?: ImportFormat;
  op: 'insert' | 'upsert';
  state: ImportState;
  /** Runs so far (a run interrupted by a restart is started again from the first file). */
  attempt: number;
  files: number;
  filesDone: number;
  rows: number;
  bytes: number;
  totalBytes: number;
  /** The file being read. */
  current?: string;
  error?: { code: string; message: string };
  /** LSN of the commit, once committed. */
  lsn?: string;
  metadataLocation?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  /** Updates so far (the record's object key). */
  version?: number;
}

const ID = /^imp_[0-9a-f]{24}$/;

export function newImportId(): string {
  return `imp_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

export const IMPORTS_PREFIX = 'imports/';

function versionKey(id: string, version: number): string {
  if (!ID.test(id)) throw new Error(`invalid import id ${JSON.stringify(id)}`);
  return `${IMPORTS_PREFIX}${id}/${String(version).padStart(10, '0')}.json`;
}

/** The import's ids under `imports/` (from a listing of it). */
export function importIdOf(key: string): string | undefined {
  const id = key.slice(IMPORTS_PREFIX.length).split('/')[0];
  return ID.test(id) ? id : undefined;
}

/**
 * The newest whole version of the record. A newest version that cannot be read is passed over:
 * torn (a write cut off by a crash, on a store whose writes are not atomic), deleted meanwhile,
 * or unreadable after the store's retries (s3rver, killed with the writer mid-write, answers
 * such an object with an error). Such a write was almost always never acknowledged; at worst
 * the record read is one step behind, which a resumed import tolerates (it finds a commit from
 * the table's idempotency record, import-runner.ts). When no version reads, the first such
 * error is thrown.
 */
export async function readImport(store: ObjectStore, id: string): Promise<ImportRecord | undefined> {
  if (!ID.test(id)) return undefined;
  const keys: string[] = [];
  for await (const o of store.list(`${IMPORTS_PREFIX}${id}/`)) keys.push(o.key);
  keys.sort().reverse();
  let failure: unknown;
  for (const key of keys) {
    try {
      return JSON.parse(new TextDecoder().decode(await store.get(key))) as ImportRecord;
    } catch (e) {
      if (!(e instanceof NotFoundError) && !(e instanceof SyntaxError)) failure ??= e;
    }
  }
  if (failure !== undefined) throw failure;
  return undefined;
}

export async function writeImport(store: ObjectStore, r: ImportRecord): Promise<void> {
  r.updatedAt = new Date().toISOString();
  r.version = (r.version ?? 0) + 1;
  await store.put(versionKey(r.id, r.version), new TextEncoder().encode(JSON.stringify(r, null, 2)));
  // The one before the previous (the previous stays until this one is known whole: it is).
  if (r.version > 2) await store.delete(versionKey(r.id, r.version - 2)).catch(() => undefined);
}

/** Whether the import is over (committed or failed). */
export function isFinished(r: ImportRecord): boolean {
  return r.state === 'committed' || r.state === 'failed';
}
