/**
 * What dropping a table removes once this writer has stopped its handler and feed: the catalog
 * entry, the table's log, its entries in the outside catalogs, and its objects — the Iceberg
 * metadata and data files unless `purge` is false (an Iceberg REST drop without
 * `purgeRequested`: engines may still refer to them), the snapshots and index runs always.
 */
import type { Catalog } from '../catalog/catalog.ts';
import type { DurableLog } from '../log/durable-log.ts';
import { deletePrefix } from '../store/delete-prefix.ts';
import { ephemeralRootOf, type TablePlace, tableRootOf } from '../store/object-keys.ts';
import type { ObjectStore } from '../store/object-store.ts';
import type { Logger } from '../util/logger.ts';
import type { CatalogMirrors } from './catalog-mirror.ts';

export interface TableDropContext {
  catalog: Catalog;
  log: DurableLog<unknown>;
  store: ObjectStore;
  logger: Logger;
  mirrors: CatalogMirrors;
}

export async function removeDroppedTable(
  c: TableDropContext,
  name: string,
  place: TablePlace,
  purge: boolean,
): Promise<void> {
  await c.catalog.dropTable(name);
  await c.log.dropTable(name);
  await c.mirrors.dropped(name);
  const removed =
    (purge ? await deletePrefix(c.store, `${tableRootOf(place)}/`) : 0) +
    (await deletePrefix(c.store, `${ephemeralRootOf(place)}/`));
  c.logger.info('table dropped', { table: name, objectsDeleted: removed, purge });
}
