/**
 * `POST /tables/{name}/rows`: one transaction, as JSON (`{"ops":[...]}`), NDJSON (one operation
 * per line) or an Arrow IPC stream (lib/engine/arrow-request.ts). Validated against the schema as a whole, then
 * appended to the durable log; the LSN is returned only once the log has it. With
 * `?wait=visible` the answer waits until a read snapshot includes the write.
 */

import { ARROW_STREAM, decodeArrowRequest } from '../../lib/engine/arrow-request.ts';
import {
  IDEMPOTENCY_KEY_PATTERN,
  type IdempotentWrite,
  requestHash,
  wrapRecord,
} from '../../lib/engine/idempotency.ts';
import { type Lsn, lsnToJson } from '../../lib/lsn.ts';
import { InvalidTransactionError } from '../../lib/schema/errors.ts';
import { newColumnsOf } from '../../lib/schema/infer-columns.ts';
import { NDJSON, ndjsonOp, ndjsonToRequest } from '../../lib/schema/ndjson-request.ts';
import type { TableDefinition } from '../../lib/schema/table-schema.ts';
import type { Operations } from '../../lib/txn/op-batch.ts';
import { decodeRequest } from '../../lib/txn/transaction.ts';
import { ApiError, badRequest, notFound } from '../api-error.ts';
import {
  bodyBytes,
  type HttpEvent,
  type HttpResult,
  header,
  json,
  query,
  streamedBodyOf,
  tableParam,
} from '../http.ts';
import type { Services } from '../services.ts';
import { waitForSnapshot } from '../snapshot-lease.ts';

/** JSON bodies from this size on are decoded off the request thread where the service can. */
const OFFLOAD_BYTES = 32 * 1024;

export async function writeRowsRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  const wait = query(event, 'wait');
  if (wait !== undefined && wait !== 'visible' && wait !== 'durable')
    throw badRequest('wait must be "visible" (or "durable", the default)');
  let def = await s.tables.get(name);
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
  const idemKey = header(event, 'idempotency-key');
  let idem: IdempotentWrite | undefined;
  if (idemKey !== undefined) {
    if (!IDEMPOTENCY_KEY_PATTERN.test(idemKey))
      throw badRequest('Idempotency-Key must be 1 to 255 printable ASCII characters without spaces');
    if (!s.writer.idempotencyRecord)
      throw new ApiError(501, 'not_implemented', 'this deployment does not support Idempotency-Key');
    idem = { key: idemKey, hash: requestHash(type, query(event, 'op') ?? '', received.bytes) };
    // A retry of a write that was applied: its original answer, nothing applied again.
    const known = await s.writer.idempotencyRecord(name, idemKey);
    if (known) return replayed(s, name, known, idem, wait);
  }
  let bytes = received.bytes;
  let text = received.text;
  let streamed: Operations | undefined;
  if (type === NDJSON || type === 'application/ndjson' || type === 'application/jsonl') {
    // One operation per line becomes the JSON body it stands for (the values' bytes untouched).
    bytes = ndjsonToRequest(bytes, ndjsonOp(query(event, 'op')));
    text = undefined;
    // Decoded as it arrived (the embedded server), with the definition this request uses.
    const early = streamedBodyOf(event);
    if (early?.schema === def.schema) streamed = early.ops;
  }
  const maxOps = s.limits.maxOpsPerRequest;
  const offload = s.decodeInWorker && type !== ARROW_STREAM && bytes.length >= OFFLOAD_BYTES;
  const decode = async (d: TableDefinition): Promise<Operations> => {
    if (type === ARROW_STREAM) return decodeArrowRequest(d.schema, bytes, maxOps);
    // A large body is decoded on the decoder worker; what it refuses, here (for the error).
    const ops = offload ? await s.decodeInWorker?.(d.schema, bytes, maxOps) : undefined;
    return ops ?? decodeRequest(d.schema, bytes, maxOps, text);
  };
  let ops: Operations;
  if (streamed) ops = streamed;
  else ({ def, ops } = await checked(s, def, decode, (d, e) => newColumnsFor(s, d, type, bytes, text, e)));
  // The record says which schema it was checked in: a change logged before it is carried over.
  const lsn = await s.log.append(name, wrapRecord({ idem, schemaId: def.schema.schemaId }, bytes), ops);
  if (idem && s.writer.idempotencyRecord) {
    // A copy with the same key may have gone into the log just before this one: the table
    // applies the first and skips the rest, and the answer is the first one's.
    const first = await s.writer.idempotencyRecord(name, idem.key, lsn);
    if (first && first.lsn !== lsn) return replayed(s, name, first, idem, wait);
  }
  if (wait === 'visible') await waitForSnapshot(s, name, lsn);
  return json(200, { lsn: lsnToJson(lsn), count: ops.length });
}

/**
 * Decodes a write against the table's definition. Refused, it is checked again against the
 * catalog's definition when the cached one is older (on AWS, a schema change made through
 * another function instance up to 5 s ago), and on a table that adds columns for new fields,
 * against the definition with them (added, and logged, first).
 */
async function checked(
  s: Services,
  cached: TableDefinition,
  decode: (d: TableDefinition) => Promise<Operations>,
  addColumns: (d: TableDefinition, e: unknown) => Promise<TableDefinition | undefined>,
): Promise<{ def: TableDefinition; ops: Operations }> {
  let def = cached;
  let error: unknown;
  try {
    return { def, ops: await decode(def) };
  } catch (e) {
    if (!(e instanceof InvalidTransactionError)) throw e;
    error = e;
  }
  s.tables.invalidate(def.name);
  const fresh = await s.tables.get(def.name);
  if (fresh && fresh.schema.schemaId !== def.schema.schemaId) {
    def = fresh;
    try {
      return { def, ops: await decode(def) };
    } catch (e) {
      if (!(e instanceof InvalidTransactionError)) throw e;
      error = e;
    }
  }
  const evolved = await addColumns(def, error);
  if (!evolved) throw error;
  return { def: evolved, ops: await decode(evolved) };
}

/**
 * The definition to check a write against after adding the columns its new fields need, for
 * tables created with `"schemaEvolution": "add-columns"`; undefined otherwise (the error stands).
 */
async function newColumnsFor(
  s: Services,
  def: TableDefinition,
  type: string,
  bytes: Uint8Array,
  text: string | undefined,
  error: unknown,
): Promise<TableDefinition | undefined> {
  if (type === ARROW_STREAM || def.schemaEvolution !== 'add-columns' || !s.writer.addColumns)
    return undefined;
  if (!(error instanceof InvalidTransactionError) || !/unknown column/.test(error.message)) return undefined;
  const changes = newColumnsOf(def.schema, text ?? new TextDecoder().decode(bytes));
  if (changes.length === 0) return undefined;
  const evolved = await s.writer.addColumns(def.name, changes);
  s.tables.invalidate(def.name);
  return evolved;
}

async function replayed(
  s: Services,
  name: string,
  first: { lsn: Lsn; count: number; hash: string },
  idem: IdempotentWrite,
  wait: string | undefined,
): Promise<HttpResult> {
  if (first.hash !== idem.hash)
    throw new ApiError(
      422,
      'idempotency_key_reused',
      `Idempotency-Key ${JSON.stringify(idem.key)} was used for a different request (LSN ${first.lsn}); use a new key for a new write`,
    );
  if (wait === 'visible') await waitForSnapshot(s, name, first.lsn);
  const r = json(200, { lsn: lsnToJson(first.lsn), count: first.count });
  return { ...r, headers: { ...r.headers, 'idempotent-replayed': 'true' } };
}
