/**
 * What a source (Postgres replication, and any other feed that is not the durable log) sees of
 * the table it feeds: a narrow sink of table events, declared here by the engine and
 * implemented by TableHandler — as Moonlink's `moonlink_sink.rs` sees only a channel of table
 * events, and kysely's core declares the `Driver` its dialects implement. A source never holds
 * the writer or the handler itself.
 */

import type { Catalog } from '../catalog/catalog.ts';
import type { Lsn } from '../lsn.ts';
import type { EvolvedSchema } from '../schema/schema-change.ts';
import type { TableDefinition, TableSchema } from '../schema/table-schema.ts';
import type { Operations } from '../txn/op-batch.ts';
import type { DecodedOp } from '../txn/transaction.ts';
import type { Logger } from '../util/logger.ts';
import type { CommitInfo } from './maintenance-scheduler.ts';
import type { RowLayout } from './row-layout.ts';

/** A source's checkpoint: its name and position (e.g. the Postgres slot and a WAL position). */
export type Checkpoint = [string, string];

export interface TableSink {
  readonly name: string;
  /** The LSN applied so far (where a source resumes). */
  readonly lsn: Lsn;
  /** A whole transaction at `lsn`. */
  apply(lsn: Lsn, ops: Operations, checkpoint?: Checkpoint): void;
  /** The source moved to `lsn` without a change to this table. */
  advance(lsn: Lsn, checkpoint?: Checkpoint): void;
  /** Empties the table at `lsn` (a TRUNCATE). */
  truncate(lsn: Lsn, checkpoint?: Checkpoint): void;
  /** One operation of a transaction still streaming (`schema`: the one it was decoded in, if not the current). */
  streamOp(xid: string, op: DecodedOp, schema?: TableSchema): void;
  streamCommit(xid: string, lsn: Lsn, checkpoint?: Checkpoint): void;
  streamAbort(xid: string): void;
  /** A schema change at `lsn`, ordered with the transactions (`inline`: it belongs to the one at `lsn`). */
  changeSchema(lsn: Lsn, evolved: EvolvedSchema, inline?: boolean): Promise<void>;
  /** Commits everything applied so far to Iceberg. */
  commit(): Promise<CommitInfo>;
  /** The checkpoints the table holds (the last Iceberg commit's, and those applied since). */
  status(): { checkpoints: Record<string, string> };
  readonly latestSchema: TableSchema;
  readonly latestLastColumnId: number;
  schemaHistory(): TableSchema[];
  schemaChangedAt(schemaId: number): Lsn;
  readonly fileLayout: RowLayout;
}

/** A source other than the durable log (e.g. Postgres replication) that feeds a table. */
export interface TableSource {
  stop(): Promise<void>;
  /** Called when the table is dropped (e.g. drop the replication slot). */
  drop?(): Promise<void>;
  /** Called after each Iceberg commit with the LSN now durable (e.g. confirm it to Postgres). */
  committed?(lsn: Lsn): void;
  /** Figures for `GET /tables/{name}` (e.g. replication lag). */
  status?(): Record<string, unknown>;
  /** Why the source stopped taking changes, while it is stopped on an error (`GET /health`). */
  problem?(): { code: string; message: string } | undefined;
  /** Copies the table again from the source (the way out of a change it could not follow). */
  resync?(): Promise<void>;
}

/** What the writer gives a source besides its table. */
export interface SourceContext {
  logger: Logger;
  catalog: Catalog;
  /** Local folder for what a source holds back on disk. */
  spillDir: string;
  /** The writer is past its memory budget: stop reading until it is not. */
  overBudget(): boolean;
}

export type SourceFactory = (
  def: TableDefinition,
  sink: TableSink,
  ctx: SourceContext,
) => Promise<TableSource>;
