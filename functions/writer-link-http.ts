/**
 * The WriterLink of the AWS deployment: HTTP calls to the internal API of the writer that owns
 * the table (writer-api.ts), found by the table's group. If no writer answers a drop, the
 * function drops the table itself (catalog entries and objects); the writer's catalog sync then
 * lets go of it.
 */

import { writerUrlFor } from '../lib/aws/table-groups.ts';
import type { Catalog } from '../lib/catalog/catalog.ts';
import { type Lsn, lsnFromJson } from '../lib/lsn.ts';
import type { TableDefinition } from '../lib/schema/table-schema.ts';
import type { ImportRecord } from '../lib/sources/import/import-record.ts';
import { deletePrefix } from '../lib/store/delete-prefix.ts';
import { ephemeralRootOf, tableRootOf } from '../lib/store/object-keys.ts';
import type { ObjectStore } from '../lib/store/object-store.ts';
import { sleep } from '../lib/util/aws-retry.ts';
import type { Logger } from '../lib/util/logger.ts';
import { ApiError } from './api-error.ts';
import type { SchemaChangeAnswer, WriterLink } from './services.ts';

export interface HttpWriterLinkOptions {
  urlTemplate: string;
  groups: number;
  catalog: Catalog;
  store: ObjectStore;
  logger: Logger;
  timeoutMs?: number;
}

const TAKEOVER_RETRY_MS = 250;

/** Internal actions that may be sent twice (a retry after a reset connection changes nothing). */
const REPEATABLE = new Set(['snapshot', 'flush', 'status', 'idempotency', 'created', 'definition']);

/** A call that failed before the writer could have acted on it (or one that may be repeated). */
function notSent(e: unknown, action: string): boolean {
  const code = (e as { cause?: { code?: unknown } }).cause?.code;
  if (code === 'ECONNREFUSED') return true;
  return REPEATABLE.has(action) && (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE');
}

export function httpWriterLink(o: HttpWriterLinkOptions): WriterLink {
  const call = async (
    table: string,
    action: string,
    query = '',
    timeoutMs = o.timeoutMs ?? 25_000,
    body?: unknown,
  ): Promise<unknown> => {
    const url = `${writerUrlFor(o.urlTemplate, table, o.groups)}/internal/tables/${table}/${action}${query}`;
    const deadline = Date.now() + timeoutMs;
    let res: Response;
    let text: string;
    // A group's takeover (a standby starting, the active writer draining) is waited out until
    // the deadline: a request a standby answered was not applied, nor one never connected.
    for (;;) {
      try {
        res = await fetch(url, {
          method: action === 'status' ? 'GET' : 'POST',
          signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
          ...(body === undefined
            ? {}
            : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        });
        text = await res.text();
      } catch (e) {
        if (notSent(e, action) && Date.now() + TAKEOVER_RETRY_MS < deadline) {
          await sleep(TAKEOVER_RETRY_MS);
          continue;
        }
        throw e;
      }
      if (res.status === 503 && /"writer_standby"/.test(text) && Date.now() + TAKEOVER_RETRY_MS < deadline) {
        await sleep(TAKEOVER_RETRY_MS);
        continue;
      }
      break;
    }
    if (res.status === 409 || res.status === 400) {
      // The writer refused (e.g. a rename to a taken name, an import of nothing): its error.
      const err = (JSON.parse(text) as { error?: { code?: string; message?: string; index?: number } }).error;
      throw new ApiError(
        res.status,
        err?.code ?? 'conflict',
        err?.message ?? text.slice(0, 200),
        typeof err?.index === 'number' ? { index: err.index } : {},
      );
    }
    if (res.status >= 400) {
      throw new ApiError(
        res.status === 404 ? 404 : 503,
        res.status === 404 ? 'not_found' : 'writer_unavailable',
        `writer: ${text.slice(0, 200)}`,
        {},
        { 'Retry-After': '1' },
      );
    }
    return text ? JSON.parse(text) : undefined;
  };
  return {
    requestSnapshot: async (table, minLsn: Lsn) => {
      await call(table, 'snapshot', `?minLsn=${minLsn}`, 10_000);
    },
    flush: async (table) => {
      const r = (await call(table, 'flush')) as { lsn: number | string; metadataLocation: string | null };
      return { lsn: lsnFromJson(r.lsn), metadataLocation: r.metadataLocation ?? undefined };
    },
    idempotencyRecord: async (table, key, afterLsn) => {
      const q = `?key=${encodeURIComponent(key)}${afterLsn === undefined ? '' : `&afterLsn=${afterLsn}`}`;
      const r = (await call(table, 'idempotency', q)) as {
        record: { lsn: string; count: number; hash: string } | null;
      };
      return r.record
        ? { lsn: lsnFromJson(r.record.lsn), count: r.record.count, hash: r.record.hash }
        : undefined;
    },
    updateProperties: async (table, change) => {
      const r = (await call(table, 'properties', '', undefined, change)) as {
        metadataLocation: string | null;
      };
      return { metadataLocation: r.metadataLocation ?? undefined };
    },
    startImport: async (table, req) => (await call(table, 'imports', '', 28_000, req)) as ImportRecord,
    renameTable: async (from, to) => (await call(from, 'rename', '', 28_000, { to })) as TableDefinition,
    changeSchema: async (table, body) => {
      const r = (await call(table, 'schema', '', 28_000, body)) as Omit<SchemaChangeAnswer, 'lsn'> & {
        lsn: number | string;
      };
      return { ...r, lsn: lsnFromJson(r.lsn) };
    },
    definitionFromSource: async (table, body) =>
      (await call(table, 'definition', '', 28_000, body)) as TableDefinition,
    resyncSource: async (table) => {
      await call(table, 'resync', '', 28_000, {});
    },
    addColumns: async (table, changes) =>
      ((await call(table, 'columns', '', 28_000, { changes })) as { definition: TableDefinition | null })
        .definition ?? undefined,
    tableCreated: async (table) => {
      // Best effort: the writer also finds new tables in the catalog by itself.
      await call(table, 'created', '', 5000).catch((e) =>
        o.logger.warn('writer not told about a new table', { table, error: e }),
      );
    },
    tableDropped: async (table, options) => {
      try {
        await call(table, 'dropped', options?.purge === false ? '?purge=false' : '');
      } catch (e) {
        if (e instanceof ApiError && e.statusCode === 404) return;
        o.logger.warn('writer unreachable for a drop; dropping directly', { table, error: e });
        const def = (await o.catalog.getTable(table)) ?? { name: table };
        await o.catalog.dropTable(table);
        if (options?.purge !== false) await deletePrefix(o.store, `${tableRootOf(def)}/`);
        await deletePrefix(o.store, `${ephemeralRootOf(def)}/`);
      }
    },
    status: async (table) => (await call(table, 'status', '', 2000)) as Record<string, unknown>,
  };
}
