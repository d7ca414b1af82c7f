/** `POST /tables/{name}/flush`: everything acknowledged becomes Parquet and an Iceberg commit. */
import { lsnToJson } from '../../lib/lsn.ts';
import { notFound } from '../api-error.ts';
import { type HttpEvent, type HttpResult, json, tableParam } from '../http.ts';
import type { Services } from '../services.ts';

export async function flushRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  if (!(await s.tables.get(name))) throw notFound(`table "${name}"`);
  const r = await s.writer.flush(name);
  return json(200, { lsn: lsnToJson(r.lsn), metadataLocation: r.metadataLocation ?? null });
}
