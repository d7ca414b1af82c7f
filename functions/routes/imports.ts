/**
 * Imports: `POST /tables/{name}/imports` starts one in the writer that owns the table (202 with
 * its record), `GET /tables/{name}/imports/{id}` shows its progress (lib/sources/import).
 */
import { importRequest, readImport } from '../../lib/sources/import/import-record.ts';
import { ApiError, badRequest, notFound } from '../api-error.ts';
import { type HttpEvent, type HttpResult, json, tableParam } from '../http.ts';
import type { Services } from '../services.ts';

export async function startImportRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  if (!(await s.catalog.getTable(name))) throw notFound(`table "${name}"`);
  if (!s.writer.startImport)
    throw new ApiError(501, 'not_implemented', 'this deployment does not run imports');
  const parsed = importRequest.safeParse(event.body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest(
      `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.message} (expected {"uri": "s3://…|file:///…", "format"?: "parquet|arrow|csv|ndjson", "op"?: "insert|upsert"})`,
    );
  }
  const record = await s.writer.startImport(name, parsed.data);
  const res = json(202, record);
  res.headers = { ...res.headers, location: `/tables/${name}/imports/${record.id}` };
  return res;
}

export async function importStatusRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  const id = event.pathParameters?.id ?? '';
  const record = await readImport(s.store, id);
  if (!record || record.table !== name) throw notFound(`import "${id}" of table "${name}"`);
  return json(200, record);
}
