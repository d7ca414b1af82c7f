/**
 * The writer on AWS (an ECS task per writer group, or `npm run local` against emulators):
 * the engine on S3, DynamoDB and Kinesis, owning the tables of its group, with the internal API
 * the functions call. New and dropped tables are picked up from the catalog every few seconds.
 */
import os from 'node:os';
import path from 'node:path';
import { GlueClient } from '@aws-sdk/client-glue';
import type { EngineOptions } from '../engine/options.ts';
import { Writer } from '../engine/writer.ts';
import { ParquetWorkerPool } from '../parquet/worker-pool.ts';
import { importRootsFromEnv } from '../sources/import/import-errors.ts';
import { ImportRunner } from '../sources/import/import-runner.ts';
import { postgresSourceFactory } from '../sources/postgres/postgres-source.ts';
import type { Logger } from '../util/logger.ts';
import { type AwsAdapters, awsAdapters } from './aws-adapters.ts';
import type { AwsConfig } from './aws-config.ts';
import { GlueCatalogMirror } from './glue-catalog-mirror.ts';
import { groupOf } from './table-groups.ts';
import { type FrontServer, startWriterApi, type WriterApi } from './writer-api.ts';
import { startWriterMetrics } from './writer-metrics.ts';

export interface AwsWriter {
  writer: Writer;
  adapters: AwsAdapters;
  api: WriterApi;
  close(options?: { flush?: boolean }): Promise<void>;
}

export async function startAwsWriter(
  config: AwsConfig,
  engine: EngineOptions,
  logger: Logger,
  listen: { port: number; host: string; syncIntervalMs?: number; front?: FrontServer },
): Promise<AwsWriter> {
  const adapters = awsAdapters(config, logger);
  const mirrors = config.glue
    ? [
        new GlueCatalogMirror({
          client: new GlueClient({ region: config.region }),
          databasePrefix: config.glue.databasePrefix,
          catalogId: config.glue.catalogId,
          logger,
        }),
      ]
    : [];
  const pool = new ParquetWorkerPool();
  pool.warm();
  const writer = new Writer({
    store: adapters.store,
    catalog: adapters.catalog,
    log: adapters.log,
    pool,
    options: engine,
    logger,
    spillDir: path.join(os.tmpdir(), `moonlink-index-${process.pid}`),
    owns: (table) => groupOf(table, config.writerGroups) === config.writerGroup,
    mirrors,
    // Functions append to Kinesis themselves and cache table definitions for 5 s.
    renameDrainMs: 6000,
  });
  writer.registerSource('postgres', postgresSourceFactory());
  await writer.start();
  const imports = new ImportRunner({
    writer,
    store: adapters.store,
    catalog: adapters.catalog,
    log: adapters.log,
    pool,
    logger,
    sources: { localRoots: importRootsFromEnv(), s3: adapters.s3Config },
    owns: (table) => groupOf(table, config.writerGroups) === config.writerGroup,
  });
  void imports.resume().catch((e) => logger.error('resuming imports failed', { error: e }));
  // Answering once the worker threads have loaded their code (see embedded-service.ts).
  await pool.started();
  const api = await startWriterApi(writer, {
    port: listen.port,
    host: listen.host,
    logger,
    imports,
    front: listen.front,
  });
  // CloudWatch metrics where the stack asks for them (a namespace); none under `npm run local`.
  const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE;
  const metrics = namespace
    ? startWriterMetrics(
        writer,
        {
          namespace,
          writerGroup: config.writerGroup,
          perTable: process.env.MOONLINK_TABLE_METRICS !== 'false',
        },
        logger,
      )
    : undefined;
  const timer = setInterval(() => {
    writer.sync().catch((e) => logger.warn('catalog sync failed', { error: e }));
  }, listen.syncIntervalMs ?? 5000);
  timer.unref();
  logger.info('writer serving', {
    group: config.writerGroup,
    groups: config.writerGroups,
    url: api.url,
    tables: writer.tableNames(),
  });
  let closing: Promise<void> | undefined;
  return {
    writer,
    adapters,
    api,
    close: (options = {}) => {
      closing ??= (async () => {
        clearInterval(timer);
        metrics?.close();
        await api.close();
        await imports.close();
        await writer.close({ flush: options.flush ?? true });
        await adapters.log.close();
        await pool.close();
      })();
      return closing;
    },
  };
}
