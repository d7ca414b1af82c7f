/**
 * An import's state, kept as `imports/<id>.json` in the service's store: what `GET
 * /tables/{name}/imports/{id}` shows, and what a restarted writer resumes from.
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
}

const ID = /^imp_[0-9a-f]{24}$/;

export function newImportId(): string {
  return `imp_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

export function importKey(id: string): string {
  if (!ID.test(id)) throw new Error(`invalid import id ${JSON.stringify(id)}`);
  return `imports/${id}.json`;
}

export const IMPORTS_PREFIX = 'imports/';

export async function readImport(store: ObjectStore, id: string): Promise<ImportRecord | undefined> {
  if (!ID.test(id)) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(await store.get(importKey(id)))) as ImportRecord;
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

export async function writeImport(store: ObjectStore, r: ImportRecord): Promise<void> {
  r.updatedAt = new Date().toISOString();
  await store.put(importKey(r.id), new TextEncoder().encode(JSON.stringify(r, null, 2)));
}

/** Whether the import is over (committed or failed). */
export function isFinished(r: ImportRecord): boolean {
  return r.state === 'committed' || r.state === 'failed';
}
