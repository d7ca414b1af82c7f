/**
 * `POST /tables/{name}/rows`: one transaction, as JSON (`{"ops":[...]}`), NDJSON (one operation
 * per line) or an Arrow IPC stream (lib/engine/arrow-request.ts). Validated against the schema as a whole, then
 * appended to the durable log; the LSN is returned only once the log has it. With
 * `?wait=visible` the answer waits until a read snapshot includes the write.
 */

import { ARROW_STREAM, decodeArrowRequest } from '../../lib/engine/arrow-request.ts';
import { lsnToJson } from '../../lib/lsn.ts';
import { NDJSON, ndjsonOp, ndjsonToRequest } from '../../lib/schema/ndjson-request.ts';
import { decodeRequest } from '../../lib/schema/transaction.ts';
import { ApiError, badRequest, notFound } from '../api-error.ts';
import { bodyBytes, type HttpEvent, type HttpResult, header, json, query, tableParam } from '../http.ts';
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
  const received = bodyBytes(event);
  const type = (header(event, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
  let bytes = received.bytes;
  let text = received.text;
  if (type === NDJSON || type === 'application/ndjson' || type === 'application/jsonl') {
    // One operation per line becomes the JSON body it stands for (the values' bytes untouched).
    bytes = ndjsonToRequest(bytes, ndjsonOp(query(event, 'op')));
    text = undefined;
  }
  const ops =
    type === ARROW_STREAM
      ? decodeArrowRequest(def.schema, bytes, s.limits.maxOpsPerRequest)
      : decodeRequest(def.schema, bytes, s.limits.maxOpsPerRequest, text);
  const lsn = await s.log.append(name, bytes, ops);
  if (wait === 'visible') await waitForSnapshot(s, name, lsn);
  return json(200, { lsn: lsnToJson(lsn), count: ops.length });
}
