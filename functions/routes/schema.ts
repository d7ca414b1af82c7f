/**
 * `POST /tables/{name}/schema` `{"changes": [...]}`: add, drop, rename, widen columns or make
 * them nullable, all or nothing (lib/schema/schema-change.ts). The change is logged with the
 * writes, applied by the writer that owns the table, and answered once writes are checked
 * against the new schema: `{"schemaId", "columns", "lsn"}`.
 */
import { lsnToJson } from '../../lib/lsn.ts';
import { parseExactJson } from '../../lib/schema/exact-json.ts';
import { notFound } from '../api-error.ts';
import { bodyText, type HttpEvent, type HttpResult, json, tableParam } from '../http.ts';
import type { Services } from '../services.ts';

export async function changeSchemaRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  if (!(await s.catalog.getTable(name))) throw notFound(`table "${name}"`);
  const body: unknown =
    typeof event.body === 'object' && event.body !== null ? event.body : parseExactJson(bodyText(event));
  const result = await s.writer.changeSchema(name, body);
  s.tables.invalidate(name);
  return json(200, { schemaId: result.schemaId, columns: result.columns, lsn: lsnToJson(result.lsn) });
}
