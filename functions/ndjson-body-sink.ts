/**
 * The embedded server's sink for NDJSON row bodies (`POST /tables/{name}/rows` with
 * `Content-Type: application/x-ndjson`): it looks the table up as the request starts and
 * decodes the body as it arrives (lib/engine/ndjson-stream.ts). Chunks that come before the
 * definition is known wait for it; a body that ends first is decoded by the route as usual.
 */
import type http from 'node:http';
import { NdjsonStreamDecoder } from '../lib/engine/ndjson-stream.ts';
import { ndjsonOp } from '../lib/schema/ndjson-request.ts';
import { canonicalTableName } from '../lib/schema/table-name.ts';
import type { TableDefinition } from '../lib/schema/table-schema.ts';
import type { BodySink } from './local-adapter.ts';

const ROWS = /^\/tables\/([^/?]+)\/rows(?:\?|$)/;
const TYPES = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl']);

export function ndjsonBodySink(
  lookup: (table: string) => Promise<TableDefinition | undefined>,
  maxOps: number,
): (req: http.IncomingMessage) => BodySink | undefined {
  return (req) => {
    if (req.method !== 'POST') return undefined;
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (!TYPES.has(type)) return undefined;
    const m = ROWS.exec(req.url ?? '');
    if (!m) return undefined;
    let table: string;
    let op: ReturnType<typeof ndjsonOp>;
    try {
      table = canonicalTableName(decodeURIComponent(m[1]));
      op = ndjsonOp(new URL(req.url ?? '/', 'http://x').searchParams.get('op') ?? undefined);
    } catch {
      return undefined; // the route answers with the error
    }
    let decoder: NdjsonStreamDecoder | undefined;
    let waiting: Uint8Array[] | undefined = [];
    lookup(table).then(
      (def) => {
        if (!def || !waiting) return;
        decoder = new NdjsonStreamDecoder(def.schema, op, maxOps);
        for (const c of waiting) decoder.push(c);
        waiting = undefined;
      },
      () => undefined,
    );
    return {
      push: (chunk) => {
        if (decoder) decoder.push(chunk);
        else waiting?.push(chunk);
      },
      end: () => {
        waiting = undefined;
        const ops = decoder?.end();
        return decoder && ops ? { schema: decoder.schema, ops } : undefined;
      },
    };
  };
}
