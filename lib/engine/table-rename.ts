/**
 * Renaming a table, done by the writer that owns it. The table's objects stay where they are
 * (its location is kept in the definition, lib/store/object-keys.ts), so engines that hold its
 * metadata location keep reading. What moves is the name: the catalog entry, the log, the
 * writer's handler.
 *
 * 1. Writes to the old name stop: the writer refuses them (503 `table_renaming`), the log is
 *    sealed where it can be (the embedded log), and where other processes append (Lambda
 *    functions appending to Kinesis) the catalog stops finding the old name — the writer
 *    still commits under it — and the rename waits `drainMs` for appends made with a
 *    definition cached before (functions cache them for 5 s).
 * 2. Everything the old name's log acknowledged is applied and committed to Iceberg, and the
 *    handler is closed.
 * 3. The new name's log is made to start after the last commit (a log that numbers each table
 *    itself gets the LSNs up to it skipped; a shared stream gets a barrier record, so records of
 *    a dropped table of the new name never replay into this one).
 * 4. The catalog moves the definition and pointer (one write on the file catalog; a sequence
 *    with a recorded intent on DynamoDB, finished after a crash), the old name's log is
 *    dropped, outside catalogs drop the old name, and the table opens under the new name.
 * A failure before step 4 leaves the table as it was, under its old name.
 */

import type { Catalog } from '../catalog/catalog.ts';
import { ConflictError, RenameRefusedError, TableRenamingError } from '../catalog/catalog.ts';
import type { DurableLog } from '../log/durable-log.ts';
import type { Lsn } from '../lsn.ts';
import type { TableDefinition } from '../schema/table-schema.ts';
import { locationOf } from '../store/object-keys.ts';
import type { Logger } from '../util/logger.ts';
import type { CatalogMirror } from './catalog-mirror.ts';
import type { TableHandler } from './table-handler.ts';

export interface RenameContext {
  catalog: Catalog;
  log: DurableLog;
  logger: Logger;
  mirrors: readonly CatalogMirror[];
  /** How long writers in other processes may still append under the old name (0 embedded). */
  drainMs: number;
  /** The table's handler, opened if need be. */
  handler(name: string): Promise<TableHandler>;
  /** Stops the table in this writer: its feed, then its handler (committing what it applied). */
  release(name: string): Promise<void>;
  /** Opens the table (under either name) if this writer owns it. */
  reopen(name: string): Promise<void>;
}

export async function renameOwnedTable(c: RenameContext, from: string, to: string): Promise<TableDefinition> {
  const def = await c.catalog.getTable(from);
  if (!def) throw new ConflictError(`table "${from}" does not exist`);
  if (def.source) {
    const kind = Object.keys(def.source)[0];
    throw new RenameRefusedError(
      `table "${from}" is fed by its ${kind} source, whose replication slot and publication are named for the table: drop it and attach the source again under the new name`,
    );
  }
  const handler = await c.handler(from);
  let released = false;
  let moved = false;
  let sealed = false;
  c.log.seal?.(from, new TableRenamingError(from, to));
  try {
    if (c.catalog.sealRename) {
      await c.catalog.sealRename(from, to);
      sealed = true;
    }
    if (c.drainMs > 0) await new Promise((r) => setTimeout(r, c.drainMs));
    const end = c.log.barrier ? await c.log.barrier(from) : await c.log.lastLsn(from);
    await handler.snapshotAtLeast(end);
    released = true;
    await c.release(from);
    const pointer = await c.catalog.getPointer(from);
    if (!pointer) throw new ConflictError(`table "${from}" has no catalog pointer`);
    const committed = pointer.committedLsn;
    let start: Lsn = committed;
    if (c.log.barrier) start = await c.log.barrier(to);
    else await c.log.startAfter?.(to, committed);
    const lsn = start > committed ? start : committed;
    // The new name may be one a table was renamed away from before (its log sealed since).
    c.log.seal?.(to, undefined);
    const renamed: TableDefinition = { ...def, name: to, location: locationOf(def) };
    await c.catalog.renameTable(from, renamed, pointer.epoch, lsn);
    moved = true;
    await c.log
      .dropTable(from)
      .catch((e) => c.logger.warn('dropping the old name’s log failed', { table: from, error: e }));
    await Promise.all(c.mirrors.map((m) => m.dropped(from)));
    c.logger.info('table renamed', { table: from, to, location: renamed.location, lsn });
    await c.reopen(to);
    return renamed;
  } catch (e) {
    if (!moved) {
      c.log.seal?.(from, undefined);
      if (sealed) await c.catalog.unsealRename?.(from).catch(() => undefined);
      if (released) await c.reopen(from).catch(() => undefined);
    }
    throw e;
  }
}
