/**
 * What feeds an opened table: its source (a Postgres slot) when the definition names one, or
 * else its records in the durable log, replayed from the table's LSN and followed from there.
 * Opening a log-fed table also tells how far replay must go before the table has recovered (the
 * log's end as of now), and whether the log is damaged (its intact prefix is delivered; the table
 * serves reads and refuses writes).
 */
import type { DurableLog, LogDamage, LogSubscription } from '../log/durable-log.ts';
import type { Lsn } from '../lsn.ts';
import type { TableDefinition } from '../schema/table-schema.ts';
import type { Operations } from '../txn/op-batch.ts';
import type { LogDelivery } from './log-delivery.ts';
import type { TableHandler } from './table-handler.ts';
import type { SourceContext, SourceFactory, TableSource } from './table-sink.ts';

export type TableFeed = LogSubscription | TableSource;

export interface TableFeedContext {
  log: DurableLog<Operations>;
  delivery: LogDelivery;
  sourceFactories: ReadonlyMap<string, SourceFactory>;
  sourceContext: SourceContext;
}

export interface AttachedFeed {
  feed: TableFeed;
  /** The log is damaged: writes are refused until it is repaired. */
  damage?: LogDamage;
}

export async function attachFeed(
  c: TableFeedContext,
  def: TableDefinition,
  handler: TableHandler,
  /** Told, before replay starts, the log's end as of now when the table is behind it. */
  recovering: (target: Lsn) => void,
): Promise<AttachedFeed> {
  if (def.source) {
    const kind = Object.keys(def.source)[0];
    const factory = c.sourceFactories.get(kind);
    if (!factory)
      throw new Error(`table "${def.name}" has a ${kind} source, but this writer has no ${kind} support`);
    return { feed: await factory(def, handler, c.sourceContext) };
  }
  // A log that numbers the table's records itself must not hand out LSNs Iceberg already
  // covers (its folder was lost, or the table was renamed and its log is new).
  await c.log.startAfter?.(def.name, handler.lsn);
  const end = await c.log.lastLsn(def.name);
  if (end > handler.lsn) recovering(end);
  const feed = await c.log.subscribe(def.name, handler.lsn, (entry) =>
    c.delivery.deliver(def, handler, entry),
  );
  return { feed, damage: await c.log.damage?.(def.name) };
}

/** Stops a feed, waiting for it when it stops asynchronously (never throws). */
export async function stopFeed(feed: TableFeed | undefined): Promise<void> {
  if (!feed) return;
  const r = feed.stop();
  if (r instanceof Promise) await r.catch(() => undefined);
}
