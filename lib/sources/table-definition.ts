/**
 * The definition of any `POST /tables` body: without a source, its columns (table-admin.ts);
 * with one, the columns and key read from the source (the Postgres table's schema). Here, above
 * table administration, because reading a source loads its driver.
 */
import type { TableDefinition } from '../schema/table-schema.ts';
import { validateTableName } from '../schema/table-schema.ts';
import { definitionFromBody, parseCreateBody, withLayout } from '../table-admin.ts';
import { definitionFromPostgres } from './postgres/attach.ts';

/**
 * A table definition from any `POST /tables` body: with a `source`, the columns and key are
 * read from it (e.g. the Postgres table's schema), which is why this is async.
 */
export async function definitionFromRequest(body: unknown): Promise<TableDefinition> {
  const b = parseCreateBody(body);
  if (!b.source) return definitionFromBody(body);
  const name = validateTableName(b.name);
  const def = await definitionFromPostgres({
    name,
    source: b.source.postgres,
    primaryKey: b.primaryKey,
    formatVersion: b.formatVersion ?? 2,
  });
  return withLayout(def, b);
}
