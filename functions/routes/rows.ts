/**
 * `POST /tables/{name}/rows`: one transaction. Validated against the schema as a whole, then
 * appended to the durable log; the LSN is returned only once the log has it. With
 * `?wait=visible` the answer waits until a read snapshot includes the write.
 */
import { lsnToJson } from '../../lib/lsn.ts';
import { decodeRequest } from '../../lib/schema/transaction.ts';
import { ApiError, badRequest, notFound } from '../api-error.ts';
import { bodyBytes, type HttpEvent, type HttpResult, json, query, tableParam } from '../http.ts';
import type { Services } from '../services.ts';
import { waitForSnapshot } from '../snapshot-lease.ts';

export async function writeRowsRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  const wait = query(event, 'wait');
  if (wait !== undefined && wait !== 'visible' && wait !== 'durable')
    throw badRequest('wait must be "visible" (or "durable", the default)');
  const def = await s.tables.get(name);
  if (!def) throw notFound(`table "${name}"`);
  if (def.source)
    throw new ApiError(
      409,
      'read_only',
      `table "${name}" is fed by its ${Object.keys(def.source)[0]} source`,
    );
  const refusal = s.writer.writeRefusal?.(name);
  if (refusal) throw refusal;
  // The log keeps these bytes, and the request is decoded from them.
  const { bytes, text } = bodyBytes(event);
  const ops = decodeRequest(def.schema, bytes, s.limits.maxOpsPerRequest, text);
  const lsn = await s.log.append(name, bytes, ops);
  if (wait === 'visible') await waitForSnapshot(s, name, lsn);
  return json(200, { lsn: lsnToJson(lsn), count: ops.length });
}
