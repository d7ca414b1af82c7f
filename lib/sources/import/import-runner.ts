/**
 * Imports: many files from object storage loaded into a table as one transaction, by the writer
 * that owns the table (`POST /tables/{name}/imports`).
 *
 * The rows are streamed into the table as a streamed transaction (as Postgres streams a large
 * one): they collect privately, spilled to Parquet as they go, and nothing of them is visible
 * until the commit. The commit is a small marker record in the table's log
 * (`{"marker":"stream-commit","xid"}`, lib/engine/writer.ts): when the table reaches it, the
 * rows commit at its LSN, and the commit is kept as an idempotency record under the xid, written
 * with the next Iceberg commit — which the import then makes (as `POST /flush` does).
 *
 * Restart-safe: an import interrupted by a crash left nothing visible (its rows died with the
 * process). When the writer starts again it looks at every import that was not finished: if the
 * table's idempotency records hold its commit, the commit reached Iceberg and the import is
 * committed; otherwise it runs again from the first file, as a new attempt with a new xid (a
 * replayed marker of an older attempt commits nothing). Never half-applied, never twice.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Catalog } from '../../catalog/catalog.ts';
import { decodeArrowRequest, isArrowStream } from '../../engine/arrow-request.ts';
import { streamCommitMarker, type Writer } from '../../engine/writer.ts';
import type { DurableLog } from '../../log/durable-log.ts';
import type { ParquetWorkerPool } from '../../parquet/worker-pool.ts';
import { ndjsonOp, ndjsonToRequest } from '../../schema/ndjson-request.ts';
import { describeColumns, type TableDefinition } from '../../schema/table-schema.ts';
import type { ObjectStore } from '../../store/object-store.ts';
import { OpBatch, type Operations } from '../../txn/op-batch.ts';
import { decodeRequest, InvalidTransactionError } from '../../txn/transaction.ts';
import type { Logger } from '../../util/logger.ts';
import { type Format, fileBatches, formatOf } from '../files/file-batches.ts';
import { ImportRefusedError } from './import-errors.ts';
import {
  IMPORTS_PREFIX,
  type ImportRecord,
  type ImportRequest,
  importIdOf,
  isFinished,
  newImportId,
  readImport,
  writeImport,
} from './import-record.ts';
import { ImportSourceError, type ImportSourceOptions, listImportFiles } from './import-source.ts';

export interface ImportRunnerDeps {
  writer: Writer;
  store: ObjectStore;
  catalog: Catalog;
  log: DurableLog;
  pool: ParquetWorkerPool;
  logger: Logger;
  sources: ImportSourceOptions;
  /** Which tables this writer owns (imports of the others are not its to resume). */
  owns?: (table: string) => boolean;
  /** Rows per decoded batch (default 10,000). */
  batchRows?: number;
  /** Least time between progress writes of the record (default 1 s). */
  progressIntervalMs?: number;
}

export { ImportRefusedError } from './import-errors.ts';

const xidOf = (r: ImportRecord): string => `import:${r.id}:${r.attempt}`;

export class ImportRunner {
  private readonly running = new Map<string, Promise<void>>();
  private stopped = false;

  constructor(private readonly deps: ImportRunnerDeps) {}

  /** Records the import (queued) and starts it; the record is what the caller answers with. */
  async start(table: string, req: ImportRequest): Promise<ImportRecord> {
    const def = await this.deps.catalog.getTable(table);
    if (!def) throw new ImportRefusedError(`table "${table}" does not exist`);
    if (def.source)
      throw new ImportRefusedError(`table "${table}" is fed by its ${Object.keys(def.source)[0]} source`);
    if (req.op === 'upsert' && def.schema.primaryKey.length === 0)
      throw new ImportRefusedError(`table "${table}" has no primary key: an import into it can only insert`);
    // A URI that names nothing fails now, with the reason, rather than as a failed import.
    const files = await listImportFiles(req.uri, this.deps.sources);
    if (!req.format) for (const f of files) formatOf(f.uri);
    const now = new Date().toISOString();
    const record: ImportRecord = {
      id: newImportId(),
      table,
      uri: req.uri,
      ...(req.format ? { format: req.format } : {}),
      op: req.op ?? 'insert',
      state: 'queued',
      attempt: 0,
      files: files.length,
      filesDone: 0,
      rows: 0,
      bytes: 0,
      totalBytes: files.reduce((a, f) => a + f.size, 0),
      createdAt: now,
      updatedAt: now,
    };
    await writeImport(this.deps.store, record);
    const answer = structuredClone(record);
    this.launch(record);
    return answer;
  }

  /**
   * After a restart: settles every unfinished import of the tables this writer owns (committed
   * when its commit reached Iceberg, else run again). Call once the writer has started.
   */
  async resume(): Promise<void> {
    const owns = this.deps.owns ?? (() => true);
    const ids = new Set<string>();
    for await (const info of this.deps.store.list(IMPORTS_PREFIX)) {
      const id = importIdOf(info.key);
      if (id) ids.add(id);
    }
    for (const id of ids) {
      const r = await readImport(this.deps.store, id).catch(() => undefined);
      if (!r || isFinished(r) || !owns(r.table) || this.running.has(r.id)) continue;
      if (!(await this.deps.catalog.getTable(r.table))) {
        await this.fail(r, { code: 'table_not_found', message: `table "${r.table}" was dropped` });
        continue;
      }
      if (r.attempt > 0) {
        const end = this.deps.log.barrier
          ? await this.deps.log.barrier(r.table)
          : await this.deps.log.lastLsn(r.table);
        const done = await this.deps.writer.idempotencyRecord(r.table, xidOf(r), end);
        if (done) {
          this.deps.logger.info('import committed before the restart', { import: r.id, table: r.table });
          await this.finish(r, done.lsn);
          continue;
        }
      }
      this.deps.logger.info('import resumed after a restart: it runs again', {
        import: r.id,
        table: r.table,
      });
      this.launch(r);
    }
  }

  /** Waits for running imports to stop at their next batch (they resume on the next start). */
  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.running.values()]);
  }

  private launch(r: ImportRecord): void {
    const run = this.run(r)
      .catch((e) => this.deps.logger.error('import failed', { import: r.id, error: e }))
      .finally(() => this.running.delete(r.id));
    this.running.set(r.id, run);
  }

  private async run(r: ImportRecord): Promise<void> {
    const { writer, store, log } = this.deps;
    r.attempt++;
    Object.assign(r, { state: 'running', filesDone: 0, rows: 0, bytes: 0, error: undefined });
    await writeImport(store, r);
    const xid = xidOf(r);
    let handler: Awaited<ReturnType<Writer['open']>> | undefined;
    try {
      handler = await writer.open(r.table);
      const def = handler.def;
      const files = await listImportFiles(r.uri, this.deps.sources);
      Object.assign(r, { files: files.length, totalBytes: files.reduce((a, f) => a + f.size, 0) });
      let lastWrite = Date.now();
      let bytesBefore = 0;
      for (const file of files) {
        r.current = file.uri;
        const format: Format = r.format ?? formatOf(file.uri);
        let row = 0;
        const batches = fileBatches(await file.open(), format, {
          batchRows: this.deps.batchRows ?? 10_000,
          op: r.op,
          columns: describeColumns(def.schema),
          decodeParquet: (bytes) => this.deps.pool.decode(bytes),
        });
        for await (const batch of batches) {
          if (this.stopped) {
            handler.streamAbort(xid);
            return;
          }
          let ops: Operations;
          try {
            ops = decodeBatch(def, batch.body, batch.query);
          } catch (e) {
            const at =
              e instanceof InvalidTransactionError && e.index !== undefined
                ? ` (row ${row + e.index + 1})`
                : '';
            throw new ImportSourceError(`${file.uri}${at}: ${(e as Error).message}`);
          }
          const n = ops.length;
          for (let i = 0; i < n; i++)
            handler.streamOp(xid, ops instanceof OpBatch ? ops.op(i) : ops[i], def.schema);
          row += n;
          r.rows += n;
          r.bytes = bytesBefore + batch.bytesRead;
          // Let the table's loop take these in before reading more; hold while over the budget.
          await yieldToLoop();
          while (writer.overBudget() && !this.stopped) await new Promise((res) => setTimeout(res, 50));
          if (Date.now() - lastWrite >= (this.deps.progressIntervalMs ?? 1000)) {
            lastWrite = Date.now();
            await writeImport(store, r);
          }
        }
        bytesBefore += file.size;
        r.bytes = bytesBefore;
        r.filesDone++;
      }
      r.current = undefined;
      r.state = 'committing';
      await writeImport(store, r);
      const lsn = await log.append(r.table, streamCommitMarker(xid));
      await handler.snapshotAtLeast(lsn);
      await this.finish(r, lsn);
    } catch (e) {
      handler?.streamAbort(xid);
      if (this.stopped) return;
      const code = (e as { code?: unknown }).code;
      await this.fail(r, {
        code: typeof code === 'string' && /^[a-z_]+$/.test(code) ? code : 'import_failed',
        message: (e as Error).message ?? String(e),
      });
    }
  }

  /** The import's commit is at `lsn`: make it an Iceberg commit, then record it. */
  private async finish(r: ImportRecord, lsn: bigint): Promise<void> {
    const c = await this.deps.writer.commit(r.table);
    Object.assign(r, {
      state: 'committed',
      lsn: lsn.toString(),
      metadataLocation: c.metadataLocation,
      finishedAt: new Date().toISOString(),
      current: undefined,
    });
    await writeImport(this.deps.store, r);
    this.deps.logger.info('import committed', { import: r.id, table: r.table, rows: r.rows, lsn });
  }

  private async fail(r: ImportRecord, error: { code: string; message: string }): Promise<void> {
    Object.assign(r, { state: 'failed', error, finishedAt: new Date().toISOString() });
    await writeImport(this.deps.store, r);
    this.deps.logger.warn('import failed; nothing of it was applied', {
      import: r.id,
      table: r.table,
      error,
    });
  }
}

function decodeBatch(def: TableDefinition, body: Uint8Array, query: string): Operations {
  if (isArrowStream(body)) return decodeArrowRequest(def.schema, body, Number.MAX_SAFE_INTEGER);
  const op = new URLSearchParams(query).get('op') ?? undefined;
  return decodeRequest(def.schema, ndjsonToRequest(body, ndjsonOp(op)), Number.MAX_SAFE_INTEGER);
}
