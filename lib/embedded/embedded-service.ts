/**
 * The embedded service (`npm start`): the whole system in one process on a laptop. A local
 * folder is the object store, a JSON file the catalog, append-only files the durable log; the
 * writer runs in-process and the public API is served by the same handlers Lambda runs.
 */

import path from 'node:path';
import { routeGroups } from '../../functions/all-routes.ts';
import { type ApiHandler, createApiHandler } from '../../functions/api.ts';
import { requireTokenBeyondLoopback } from '../../functions/bearer-token.ts';
import { type LocalServer, startLocalServer } from '../../functions/local-adapter.ts';
import { ndjsonBodySink } from '../../functions/ndjson-body-sink.ts';
import { type Services, TableCache, type WriterLink } from '../../functions/services.ts';
import { FileCatalog } from '../catalog/file-catalog.ts';
import type { ServiceConfig } from '../config.ts';
import { writerStatusJson } from '../engine/table-handler.ts';
import { decodeRequestIn } from '../engine/worker-jobs.ts';
import { Writer } from '../engine/writer.ts';
import { workersStarting } from '../engine/writer-health.ts';
import { LocalLog } from '../log/local-log.ts';
import { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import { SnapshotReader } from '../read/snapshot-reader.ts';
import { ImportRunner } from '../sources/import/import-runner.ts';
import { postgresSourceFactory } from '../sources/postgres/postgres-source.ts';
import { LocalObjectStore, recordedLocationBase } from '../store/local-object-store.ts';
import type { Operations } from '../txn/op-batch.ts';
import { lockDir } from '../util/dir-lock.ts';
import { JsonLogger, type Logger } from '../util/logger.ts';

export interface EmbeddedService {
  url: string;
  port: number;
  writer: Writer;
  services: Services;
  handler: ApiHandler;
  /** Stops serving, then (by default) flushes every table. */
  close(options?: { flush?: boolean }): Promise<void>;
}

/** The WriterLink of the embedded service: direct calls into the in-process writer. */
export function inProcessWriterLink(
  writer: Writer,
  imports?: ImportRunner,
  pools: Record<string, ParquetWorkerPool> = {},
): WriterLink {
  return {
    ...(imports ? { startImport: (table, req) => imports.start(table, req) } : {}),
    requestSnapshot: async (table, minLsn) => {
      await writer.snapshotAtLeast(table, minLsn);
    },
    flush: async (table) => {
      const r = await writer.commit(table);
      return { lsn: r.lsn, metadataLocation: r.metadataLocation };
    },
    idempotencyRecord: (table, key, afterLsn) => writer.idempotencyRecord(table, key, afterLsn),
    updateProperties: async (table, change) => {
      const r = await writer.updateProperties(table, change);
      return { metadataLocation: r.metadataLocation };
    },
    tableCreated: async (table) => {
      await writer.open(table);
    },
    tableDropped: (table, options) => writer.drop(table, options),
    renameTable: (from, to) => writer.rename(from, to),
    changeSchema: (table, body) => writer.changeSchema(table, body),
    addColumns: (table, changes) => writer.addColumns(table, changes),
    resyncSource: (table) => writer.resyncSource(table),
    status: async (table) => {
      const handler = await writer.open(table).catch(() => undefined);
      const state = writer.tableState(table);
      return {
        ...state,
        ...(handler ? writerStatusJson(handler.status()) : {}),
        eventLoopDelay: writer.eventLoop.sinceStart(),
        memory: writer.memoryStatus(),
        ...(writer.sourceStatus(table) ? { source: writer.sourceStatus(table) } : {}),
        ...(writer.catalogStatus(table) ? { catalogs: writer.catalogStatus(table) } : {}),
      };
    },
    writeRefusal: (table) => writer.writeRefusal(table),
    recoveryTarget: (table) => writer.recoveryTarget(table),
    health: async () => {
      const h = await writer.health();
      // Pools besides the writer's own (the request decoder's).
      const problems = [...h.problems];
      for (const [name, pool] of Object.entries(pools)) {
        const p = workersStarting(pool, name);
        if (p) problems.push(p);
      }
      return { ready: h.ready && problems.length === h.problems.length, problems };
    },
  };
}

export async function startEmbedded(
  config: ServiceConfig,
  logger: Logger = new JsonLogger(),
): Promise<EmbeddedService> {
  // Before anything opens: a server reachable from other machines needs a token.
  requireTokenBeyondLoopback(config.host, config.apiToken);
  const dataDir = path.resolve(config.dataDir);
  const unlock = await lockDir(dataDir);
  const objects = path.join(dataDir, 'objects');
  const located = await recordedLocationBase(path.join(dataDir, 'store-location.json'), objects);
  if (located.movedFrom)
    logger.info('data folder was moved; Iceberg locations keep the path they were written with', {
      dataDir,
      writtenUnder: located.movedFrom,
    });
  const store = new LocalObjectStore(objects, { locationBase: located.locationBase });
  const catalog = await FileCatalog.open(path.join(dataDir, 'catalog.json'));
  const log = new LocalLog<Operations>(path.join(dataDir, 'log'), {
    logger,
    maxOpenFiles: config.logMaxOpenFiles,
  });
  // Flushes, tail files and compaction: the column encoder is needed by the first flush.
  const pool = new ParquetWorkerPool(undefined, { eager: ['columns'] });
  pool.warm();
  // Large JSON transactions are decoded on a thread of their own, never queued behind a
  // flush's Parquet encoding (the request thread is the service's busiest).
  const decoder = new ParquetWorkerPool(1, { eager: ['decode-request'] });
  decoder.warm();
  const writer = new Writer({
    store,
    catalog,
    log,
    pool,
    options: config.engine,
    logger,
    spillDir: path.join(dataDir, 'index-spill'),
  });
  writer.registerSource('postgres', postgresSourceFactory());
  await writer.start();
  const imports = new ImportRunner({
    writer,
    store,
    catalog,
    log,
    pool,
    logger,
    sources: { localRoots: config.importRoots },
  });
  void imports.resume().catch((e) => logger.error('resuming imports failed', { error: e }));
  const services: Services = {
    catalog,
    store,
    log,
    writer: inProcessWriterLink(writer, imports, { 'request-decoder': decoder }),
    limits: config.limits,
    logger,
    pool: () => pool,
    decodeInWorker: (schema, bytes, maxOps) =>
      decodeRequestIn(decoder, schema, bytes, maxOps).catch(() => undefined),
    tables: new TableCache(catalog, 1000),
    reader: new SnapshotReader(store, () => pool),
  };
  const handler = createApiHandler(
    services,
    routeGroups(['health', 'tables', 'ingest', 'read', 'flush', 'files', 'catalog']),
  );
  let server: LocalServer;
  try {
    // Listening once the worker threads have loaded their code (about two seconds through tsx),
    // so the first writes do not wait for it and `GET /health` is ready as soon as it answers.
    await Promise.all([pool.started(), decoder.started()]);
    server = await startLocalServer(handler, {
      port: config.port,
      host: config.host,
      maxBodyBytes: config.limits.maxBodyBytes,
      token: config.apiToken,
      streamBody: ndjsonBodySink((t) => services.tables.get(t), config.limits.maxOpsPerRequest),
    });
  } catch (e) {
    await writer.close();
    await decoder.close();
    await unlock();
    throw e;
  }
  store.readUrlBase = `${server.url}/files`;
  logger.info('moonlink serving', { url: server.url, dataDir, tables: writer.tableNames().length });
  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    port: server.port,
    writer,
    services,
    handler,
    close: (options = {}) => {
      closing ??= (async () => {
        await server.close();
        await imports.close();
        await writer.close({ flush: options.flush ?? true });
        await log.close();
        await catalog.close();
        await pool.close();
        await decoder.close();
        await unlock();
        logger.info('moonlink stopped');
      })();
      return closing;
    },
  };
}
