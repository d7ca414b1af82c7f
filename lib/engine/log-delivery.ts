/**
 * Delivering a table's durable log to its handler: each record decoded in the schema it was
 * checked in (a record with new fields brings its schema change along, for tables that add
 * columns), markers turned into what they mark (schema changes, the commits of streamed
 * imports, LSN barriers), and records that cannot be decoded — a producer writing straight to
 * the stream — moved to a dead-letter object with the reason, the table moving on.
 */

import type { LogEntry } from '../log/durable-log.ts';
import type { EvolvedSchema } from '../schema/schema-change.ts';
import type { TableDefinition, TableSchema } from '../schema/table-schema.ts';
import type { ObjectStore } from '../store/object-store.ts';
import type { Operations } from '../txn/op-batch.ts';
import { decodeRequest } from '../txn/transaction.ts';
import type { Logger } from '../util/logger.ts';
import { decodeArrowRequest, isArrowStream } from './arrow-request.ts';
import { type IdempotentWrite, unwrapRecord } from './idempotency.ts';
import {
  deliverSchemaChange,
  type SchemaChangeContext,
  schemaChangeOf,
  schemaForNewFields,
} from './schema-evolution.ts';
import type { TableHandler } from './table-handler.ts';

export class LogDelivery {
  deadLettered = 0;
  /** Records dead-lettered since the writer started, by table. */
  readonly deadLetteredByTable = new Map<string, number>();

  constructor(
    private readonly deps: { store: ObjectStore; logger: Logger; schemaContext: () => SchemaChangeContext },
  ) {}

  deliver(def: TableDefinition, handler: TableHandler, entry: LogEntry<Operations>): void {
    if (isMarker(entry)) {
      const evolved = schemaChangeOf(entry);
      if (evolved) {
        void deliverSchemaChange(this.deps.schemaContext(), def, handler, entry.lsn, evolved);
        return;
      }
      const commit = streamCommitOf(entry);
      if (commit) handler.streamCommit(commit, entry.lsn, undefined, { key: commit, hash: 'stream-commit' });
      else handler.advance(entry.lsn);
      return;
    }
    let ops: Operations;
    let idem: IdempotentWrite | undefined;
    let schema: TableSchema = handler.latestSchema;
    let body = entry.payload;
    try {
      const rec = unwrapRecord(entry.payload);
      body = rec.body;
      idem = rec.idem;
      // The schema the record was checked in (a change may have come between).
      if (rec.schemaId !== undefined) schema = handler.schemaById(rec.schemaId) ?? schema;
      ops = entry.decoded ?? decodeLogged(schema, body);
    } catch (e) {
      const evolved = this.newFieldsSchema(def, handler, body);
      if (!evolved) {
        this.deadLetter(def.name, entry, (e as Error).message);
        handler.advance(entry.lsn);
        return;
      }
      // A record with new fields (a table that adds columns): the change goes with it.
      void deliverSchemaChange(this.deps.schemaContext(), def, handler, entry.lsn, evolved, true);
      schema = evolved.schema;
      try {
        ops = decodeLogged(schema, body);
      } catch (again) {
        this.deadLetter(def.name, entry, (again as Error).message);
        handler.advance(entry.lsn);
        return;
      }
    }
    handler.apply(entry.lsn, ops, undefined, idem, schema);
  }

  /** The schema a record's new fields need, for tables that add columns (else undefined). */
  private newFieldsSchema(
    def: TableDefinition,
    handler: TableHandler,
    body: Uint8Array,
  ): EvolvedSchema | undefined {
    if (def.schemaEvolution !== 'add-columns' || isArrowStream(body)) return undefined;
    try {
      return schemaForNewFields(
        def,
        handler.latestSchema,
        handler.latestLastColumnId,
        new TextDecoder().decode(body),
      );
    } catch {
      return undefined;
    }
  }

  private deadLetter(table: string, entry: LogEntry<Operations>, reason: string): void {
    this.deadLettered++;
    this.deadLetteredByTable.set(table, (this.deadLetteredByTable.get(table) ?? 0) + 1);
    const key = `deadletter/${table}/${entry.lsn.toString().padStart(20, '0')}.json`;
    const body = JSON.stringify({
      table,
      lsn: entry.lsn.toString(),
      reason,
      record: new TextDecoder().decode(entry.payload),
    });
    // The reason may quote row data: it goes to the dead-letter object, the log gets where it failed.
    this.deps.logger.warn('log record moved to dead-letter location', {
      table,
      lsn: entry.lsn,
      at: reason.split(':')[0].slice(0, 80),
      key,
    });
    this.deps.store
      .put(key, new TextEncoder().encode(body))
      .catch((e) => this.deps.logger.error('dead-letter write failed', { key, error: e }));
  }
}

const MARKER_PREFIX = new TextEncoder().encode('{"marker"');

/**
 * A marker that commits a transaction streamed to the table by this process (an import):
 * `{"marker":"stream-commit","xid":…}`. The transaction commits at the marker's LSN and is kept
 * as an idempotency record under its xid; replayed after a restart (the streamed rows gone with
 * the process) it only moves the LSN.
 */
export function streamCommitMarker(xid: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ marker: 'stream-commit', xid }));
}

function streamCommitOf(entry: LogEntry): string | undefined {
  try {
    const m = JSON.parse(new TextDecoder().decode(entry.payload)) as { marker?: unknown; xid?: unknown };
    return m.marker === 'stream-commit' && typeof m.xid === 'string' ? m.xid : undefined;
  } catch {
    return undefined;
  }
}

/** A marker record (see DurableLog.barrier): moves the table's LSN, changes nothing. */
function isMarker(entry: LogEntry): boolean {
  if (entry.decoded !== undefined || entry.payload.length < MARKER_PREFIX.length) return false;
  for (let i = 0; i < MARKER_PREFIX.length; i++) if (entry.payload[i] !== MARKER_PREFIX[i]) return false;
  return true;
}

/** A logged record's body decoded in `schema` (JSON or an Arrow stream). */
function decodeLogged(schema: TableSchema, body: Uint8Array): Operations {
  return isArrowStream(body)
    ? decodeArrowRequest(schema, body, Number.MAX_SAFE_INTEGER)
    : decodeRequest(schema, body);
}
