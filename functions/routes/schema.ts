/**
 * `POST /tables/{name}/schema` `{"changes": [...]}`: add, drop, rename, widen columns or make
 * them nullable, all or nothing (lib/schema/schema-change.ts). The change is logged with the
 * writes, applied by the writer that owns the table, and answered once writes are checked
 * against the new schema: `{"schemaId", "columns", "lsn"}`.
 */
import { lsnToJson } from '../../lib/lsn.ts';
import { parseExactJson } from '../../lib/schema/exact-json.ts';
import { ApiError, notFound } from '../api-error.ts';
import { bodyText, type HttpEvent, type HttpResult, json, tableParam } from '../http.ts';
import type { Services } from '../services.ts';

export async function changeSchemaRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  if (!(await s.catalog.getTable(name))) throw notFound(`table "${name}"`);
  const body: unknown =
    typeof event.body === 'object' && event.body !== null ? event.body : parseExactJson(bodyText(event));
  const result = await s.writer.changeSchema(name, body);
  s.tables.invalidate(name);
  return json(200, { ...result, lsn: lsnToJson(result.lsn) });
}

/**
 * `POST /tables/{name}/source/resync`: copies a source-fed table again from its source, as the
 * source table is now (its columns included): the way out of a source change the table could
 * not follow (`source.state: "error"`). 202; follow it in `GET /tables/{name}` (`source.state`).
 */
export async function resyncSourceRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  const def = await s.catalog.getTable(name);
  if (!def) throw notFound(`table "${name}"`);
  if (!def.source) throw new ApiError(409, 'no_source', `table "${name}" is not fed by a source`);
  await s.writer.resyncSource(name);
  return json(202, { table: name, state: 'copying' });
}
