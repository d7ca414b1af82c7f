/**
 * The writer's internal HTTP API, reachable only from the read/ingest functions (security
 * group): asks for an on-demand snapshot, a flush, or to pick up a created or dropped table.
 *
 *   GET  /health                                     → 200 ready, or 503 listing damaged/failed tables
 *   GET  /health/live                                → 200 while the process answers
 *   POST /internal/tables/{name}/snapshot?minLsn=L   → {"lsn"} once a snapshot covers L
 *   POST /internal/tables/{name}/flush               → {"lsn","metadataLocation"}
 *   POST /internal/tables/{name}/created             → 204
 *   POST /internal/tables/{name}/dropped             → 204 (drops data and catalog entries)
 *   GET  /internal/tables/{name}/status              → writer-side figures
 *   POST /internal/tables/{name}/definition          → the definition of a `POST /tables` body
 *                                                      with a source, read from the source here:
 *                                                      only the writer reads its secret
 *
 * On a group member (writer-group-member.ts) it is mounted on the member's server once the
 * member is the active writer; a standby answers the same paths itself (forwarding).
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { NoSuchTableError } from '../catalog/catalog.ts';
import { parseSchemaChanges } from '../engine/schema-evolution.ts';
import { writerStatusJson } from '../engine/table-handler.ts';
import type { Writer } from '../engine/writer.ts';
import { parsePropertyChange as propertyChange } from '../iceberg/table-properties.ts';
import { lsnToJson, parseLsn, ZERO_LSN } from '../lsn.ts';
import { TABLE_NAME_PATTERN } from '../schema/table-name.ts';
import { SchemaError } from '../schema/table-schema.ts';
import { importRequest } from '../sources/import/import-record.ts';
import type { ImportRunner } from '../sources/import/import-runner.ts';
import { PostgresAttachError } from '../sources/postgres/attach.ts';
import { ConnectionSecretError } from '../sources/postgres/connection-secret.ts';
import { definitionFromRequest } from '../sources/table-definition.ts';
import type { Logger } from '../util/logger.ts';

export interface WriterApi {
  port: number;
  url: string;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Bodies of internal requests are small (property changes). */
const MAX_INTERNAL_BODY = 1024 * 1024;

/** Refusals a caller must see as they are (409 with the code), not as an unavailable writer. */
const REFUSALS = new Set([
  'table_exists',
  'rename_refused',
  'conflict',
  'name_taken',
  'import_refused',
  'schema_change_refused',
]);

/**
 * An HTTP server whose request handler can be switched: a standby task's answers until the
 * writer's API takes over on the same port (writer-group-member.ts), and back during a drain.
 */
export interface FrontServer {
  port: number;
  url: string;
  /** Installs a handler; returns the one it replaces. */
  use(handler: http.RequestListener): http.RequestListener;
  close(): Promise<void>;
}

export function listenFront(port: number, host: string, initial: http.RequestListener): Promise<FrontServer> {
  let current = initial;
  const server = http.createServer((req, res) => current(req, res));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const bound = (server.address() as AddressInfo).port;
      resolve({
        port: bound,
        url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`,
        use: (handler) => {
          const before = current;
          current = handler;
          return before;
        },
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

export async function startWriterApi(
  writer: Writer,
  options: { port: number; host: string; logger: Logger; imports?: ImportRunner; front?: FrontServer },
): Promise<WriterApi> {
  const handle: http.RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://writer');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_INTERNAL_BODY) chunks.push(c);
    });
    const body = new Promise<unknown>((resolve, reject) => {
      req.once('end', () => {
        if (size > MAX_INTERNAL_BODY) return reject(new Error('internal request body too large'));
        try {
          resolve(size === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          reject(e);
        }
      });
      req.once('error', reject);
    });
    body.catch(() => undefined);
    if (url.pathname === '/health/live') return send(res, 200, { status: 'alive' });
    if (url.pathname === '/health') {
      void writer.health().then(
        (h) =>
          h.ready
            ? send(res, 200, { status: 'ok', tables: writer.tableNames().length })
            : send(res, 503, { status: 'unavailable', problems: h.problems }),
        (e) =>
          send(res, 503, { status: 'unavailable', error: { code: 'health_failed', message: String(e) } }),
      );
      return;
    }
    const m =
      /^\/internal\/tables\/([^/]+)\/(snapshot|flush|properties|idempotency|created|dropped|rename|imports|schema|columns|resync|definition|status)$/.exec(
        url.pathname,
      );
    if (!m || !TABLE_NAME_PATTERN.test(m[1]))
      return send(res, 404, { error: { code: 'not_found', message: 'no such route' } });
    const [, table, action] = m;
    const work = async (): Promise<[number, unknown?]> => {
      switch (action) {
        case 'snapshot': {
          const snap = await writer.snapshotAtLeast(
            table,
            parseLsn(url.searchParams.get('minLsn')) ?? ZERO_LSN,
          );
          return [200, { lsn: lsnToJson(snap.lsn), key: snap.objectKey }];
        }
        case 'flush': {
          const r = await writer.commit(table);
          return [200, { lsn: lsnToJson(r.lsn), metadataLocation: r.metadataLocation ?? null }];
        }
        case 'properties': {
          const change = propertyChange(await body);
          const r = await writer.updateProperties(table, change);
          return [200, { lsn: lsnToJson(r.lsn), metadataLocation: r.metadataLocation ?? null }];
        }
        case 'idempotency': {
          const key = url.searchParams.get('key') ?? '';
          const r = await writer.idempotencyRecord(
            table,
            key,
            parseLsn(url.searchParams.get('afterLsn')) ?? ZERO_LSN,
          );
          return [200, { record: r ? { lsn: r.lsn.toString(), count: r.count, hash: r.hash } : null }];
        }
        case 'created':
          await writer.open(table);
          return [204];
        case 'rename': {
          const to = (await body) as { to?: unknown };
          if (typeof to?.to !== 'string' || !TABLE_NAME_PATTERN.test(to.to))
            return [400, { error: { code: 'bad_request', message: 'body: {"to": "<table name>"}' } }];
          return [200, await writer.rename(table, to.to)];
        }
        case 'schema': {
          const r = await writer.changeSchema(table, await body);
          return [200, { ...r, lsn: lsnToJson(r.lsn) }];
        }
        case 'definition': {
          const request = (await body) as { name?: unknown } | null;
          if (request?.name !== table)
            return [
              400,
              { error: { code: 'bad_request', message: 'body: a POST /tables body naming this table' } },
            ];
          return [200, await definitionFromRequest(request)];
        }
        case 'resync':
          await writer.resyncSource(table);
          return [202, { state: 'copying' }];
        case 'columns': {
          const changes = ((await body) as { changes?: unknown } | null)?.changes;
          return [
            200,
            { definition: (await writer.addColumns(table, parseSchemaChanges({ changes }))) ?? null },
          ];
        }
        case 'imports': {
          if (!options.imports)
            return [501, { error: { code: 'not_implemented', message: 'no imports here' } }];
          const parsed = importRequest.safeParse(await body);
          if (!parsed.success)
            return [400, { error: { code: 'invalid_import', message: parsed.error.issues[0].message } }];
          return [202, await options.imports.start(table, parsed.data)];
        }
        case 'dropped':
          await writer.drop(table, { purge: url.searchParams.get('purge') !== 'false' });
          return [204];
        default: {
          const h = await writer.open(table);
          const catalogs = writer.catalogStatus(table);
          return [
            200,
            {
              ...writerStatusJson(h.status()),
              eventLoopDelay: writer.eventLoop.sinceStart(),
              ...(catalogs ? { catalogs } : {}),
            },
          ];
        }
      }
    };
    work().then(
      ([status, body]) => send(res, status, body),
      (e) => {
        const message = (e as Error).message ?? String(e);
        const code = (e as { code?: unknown }).code;
        if (typeof code === 'string' && REFUSALS.has(code))
          return send(res, 409, { error: { code, message } });
        if (code === 'invalid_import') return send(res, 400, { error: { code, message } });
        // A source that cannot be attached (unreachable, no such table, a bad secret): the caller's.
        if (e instanceof SchemaError) return send(res, 400, { error: { code: 'invalid_schema', message } });
        if (e instanceof ConnectionSecretError || e instanceof PostgresAttachError)
          return send(res, 400, { error: { code: 'invalid_source', message } });
        if (code === 'invalid_schema_change' || code === 'invalid_request' || code === 'invalid_schema')
          return send(res, 400, { error: { code, message, index: (e as { index?: unknown }).index } });
        const notFound = e instanceof NoSuchTableError;
        if (!notFound) options.logger.warn('internal request failed', { table, action, error: e });
        send(res, notFound ? 404 : 503, {
          error: { code: notFound ? 'not_found' : 'writer_unavailable', message },
        });
      },
    );
  };
  if (options.front) {
    // Mounted on a group member's server: closing gives the port back to its standby answers.
    const front = options.front;
    const before = front.use(handle);
    return { port: front.port, url: front.url, close: async () => void front.use(before) };
  }
  const front = await listenFront(options.port, options.host, handle);
  return { port: front.port, url: front.url, close: () => front.close() };
}
