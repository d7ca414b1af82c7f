/**
 * `GET /tables/{name}/rows`: rows of a leased snapshot with deletion vectors applied, for
 * clients with no engine. `columns` projects, `filter` selects rows (and skips files whose
 * partition cannot hold any, reported as `filesSkipped`; see lib/read/scan-filter.ts), `limit`
 * pages, `cursor` continues (the cursor keeps the snapshot's lease alive; the lease is released
 * after the last page). JSON by
 * default; Arrow IPC stream with `Accept: application/vnd.apache.arrow.stream`.
 */
import type * as arrow from 'apache-arrow';
import type { Lease } from '../../lib/catalog/catalog.ts';
import {
  arrowSchemaFor,
  buildData,
  buildRecordBatch,
  readData,
  tableToIpc,
} from '../../lib/columns/arrow-convert.ts';
import { snapshotSchema } from '../../lib/engine/snapshot-manifest.ts';
import { lsnFromText, lsnToJson } from '../../lib/lsn.ts';
import { projectBatch } from '../../lib/parquet/schema-projection.ts';
import {
  type Comparison,
  FilterError,
  matches,
  parseFilter,
  partitionMayMatch,
} from '../../lib/read/scan-filter.ts';
import type { NestedField } from '../../lib/schema/iceberg-type.ts';
import { specFromIcebergJson } from '../../lib/schema/partition-spec.ts';
import { fieldEncoder, type Value } from '../../lib/schema/values.ts';
import { ApiError, badRequest, notFound } from '../api-error.ts';
import {
  type HttpEvent,
  type HttpResult,
  header,
  intParam,
  jsonText,
  lsnParam,
  query,
  tableParam,
} from '../http.ts';
import type { Services } from '../services.ts';
import { leaseSnapshot } from '../snapshot-lease.ts';

interface Cursor {
  l: string; // lease id
  s: string; // snapshot key
  f: number; // file index
  r: number; // row position within the file
  q?: string; // the filter the scan started with
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(text: string, table: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Cursor;
    if (
      typeof c.l === 'string' &&
      typeof c.s === 'string' &&
      Number.isInteger(c.f) &&
      Number.isInteger(c.r) &&
      c.l.startsWith(`${table}.`)
    ) {
      return c;
    }
  } catch {
    // fall through
  }
  throw badRequest('invalid cursor');
}

const ARROW_STREAM = 'application/vnd.apache.arrow.stream';

/** The positions of the `columns` parameter's columns (all columns when absent). */
function columnsOf(fields: NestedField[], param: string | undefined): number[] {
  if (!param) return fields.map((_, i) => i);
  return param.split(',').map((c) => {
    const i = fields.findIndex((f) => f.name === c.trim());
    if (i < 0) throw badRequest(`unknown column "${c.trim()}" in columns`);
    return i;
  });
}

export async function scanRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const name = tableParam(event);
  const def = await s.tables.get(name);
  if (!def) throw notFound(`table "${name}"`);
  const limit = intParam(event, 'limit', s.limits.defaultScanLimit, 1, s.limits.maxScanLimit);
  const columnsParam = query(event, 'columns');
  // Checked against the table's schema before a lease is taken; again against the snapshot's.
  columnsOf(def.schema.fields, columnsParam);
  const cursorText = query(event, 'cursor');
  let cursor: Cursor;
  let lease: Lease;
  if (cursorText) {
    cursor = decodeCursor(cursorText, name);
    const held = await s.catalog.getLease(cursor.l);
    if (!held || held.expiresAt < Date.now() || held.snapshotKey !== cursor.s) {
      throw new ApiError(410, 'cursor_expired', "the cursor's snapshot lease expired; start the scan again");
    }
    lease = { ...held, expiresAt: Date.now() + s.limits.leaseTtlMs };
    await s.catalog.putLease(lease);
  } else {
    const leased = await leaseSnapshot(s, name, lsnParam(event, 'minLsn'));
    lease = leased.lease;
    cursor = { l: lease.leaseId, s: lease.snapshotKey, f: 0, r: 0 };
  }
  const manifest = await s.reader.manifest(cursor.s);
  // The snapshot's schema: a read at an LSN after a schema change shows the new columns.
  const fields = snapshotSchema(manifest, def).fields;
  const projection = columnsOf(fields, columnsParam);
  // A continued scan keeps the filter it started with.
  const filterText = cursorText ? cursor.q : query(event, 'filter');
  let filter: Comparison[] = [];
  try {
    filter = parseFilter(filterText ?? '', fields);
  } catch (e) {
    if (e instanceof FilterError) throw badRequest(e.message);
    throw e;
  }
  if (filterText) cursor.q = filterText;
  const specs = new Map((manifest.partitionSpecs ?? []).map((j) => [j['spec-id'], specFromIcebergJson(j)]));
  const picked: Value[][] = projection.map(() => []);
  let count = 0;
  let skipped = 0;
  let scanned = 0;
  let f = cursor.f;
  let r = cursor.r;
  while (f < manifest.files.length && count < limit) {
    const file = manifest.files[f];
    const spec = file.specId === undefined ? undefined : specs.get(file.specId);
    if (filter.length > 0 && spec && file.partition && !partitionMayMatch(filter, spec, file.partition)) {
      skipped++;
      f++;
      r = 0;
      continue;
    }
    if (r === 0) scanned++;
    const { table, deleted } = await s.reader.file(file);
    let pos = 0;
    for (const batch of table.batches) {
      if (pos + batch.numRows <= r) {
        pos += batch.numRows;
        continue;
      }
      const data = projectBatch(batch, fields);
      const cols = projection.map((c) => readData(fields[c].type, data[c]));
      const tests = filter.map((c) => readData(fields[c.index].type, data[c.index]));
      for (let i = 0; i < batch.numRows && count < limit; i++, pos++) {
        if (pos < r || deleted?.has(pos)) continue;
        if (!filter.every((c, k) => matches(c, tests[k][i]))) continue;
        for (let k = 0; k < projection.length; k++) picked[k].push(cols[k][i]);
        count++;
      }
      if (count >= limit) break;
    }
    if (count >= limit && pos < table.numRows) {
      r = pos;
      break;
    }
    f++;
    r = 0;
  }
  const done = f >= manifest.files.length;
  const next = done
    ? undefined
    : encodeCursor({ l: cursor.l, s: cursor.s, f, r, ...(cursor.q ? { q: cursor.q } : {}) });
  if (done) await s.catalog.deleteLease(cursor.l).catch(() => undefined);
  const projected: NestedField[] = projection.map((c) => fields[c]);
  const accept = header(event, 'accept') ?? '';
  if (accept.includes(ARROW_STREAM)) {
    const batch = buildRecordBatch(
      arrowSchemaFor(projected),
      projected.map((field, k) => buildData(field.type, picked[k])),
    );
    const ipc = tableToIpc(batch as arrow.RecordBatch);
    return {
      statusCode: 200,
      headers: {
        'content-type': ARROW_STREAM,
        'x-moonlink-lsn': manifest.lsn,
        'x-moonlink-files-scanned': String(scanned),
        'x-moonlink-files-skipped': String(skipped),
        ...(next ? { 'x-moonlink-next-cursor': next } : {}),
      },
      body: Buffer.from(ipc).toString('base64'),
      isBase64Encoded: true,
    };
  }
  const encoders = projected.map(fieldEncoder);
  const names = projected.map((p) => JSON.stringify(p.name));
  const rows: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    let row = '{';
    for (let k = 0; k < projected.length; k++)
      row += `${k > 0 ? ',' : ''}${names[k]}:${encoders[k](picked[k][i])}`;
    rows[i] = `${row}}`;
  }
  const lsn = JSON.stringify(lsnToJson(lsnFromText(manifest.lsn)));
  return jsonText(
    200,
    `{"lsn":${lsn},"rows":[${rows.join(',')}],"filesScanned":${scanned},"filesSkipped":${skipped}${next ? `,"nextCursor":${JSON.stringify(next)}` : ''}}`,
  );
}
