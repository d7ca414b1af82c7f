/**
 * The whole AWS shape on a laptop: S3, DynamoDB and Kinesis emulators on loopback, the writer
 * on them (as in its ECS task), and the public API served by the Lambda handlers through the
 * local HTTP adapter, reaching the writer over its internal HTTP API as the functions do.
 */
import path from 'node:path';
import { routeGroups } from '../functions/all-routes.ts';
import { createApiHandler } from '../functions/api.ts';
import { requireTokenBeyondLoopback } from '../functions/bearer-token.ts';
import { type LocalServer, startLocalServer } from '../functions/local-adapter.ts';
import { type Services, TableCache } from '../functions/services.ts';
import { httpWriterLink } from '../functions/writer-link-http.ts';
import { awsAdapters } from '../lib/aws/aws-adapters.ts';
import type { AwsConfig } from '../lib/aws/aws-config.ts';
import { type AwsWriter, startAwsWriter } from '../lib/aws/aws-writer.ts';
import type { ServiceConfig } from '../lib/config.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { SnapshotReader } from '../lib/read/snapshot-reader.ts';
import type { Logger } from '../lib/util/logger.ts';
import {
  DEFAULT_BUCKET,
  DEFAULT_CATALOG_TABLE,
  DEFAULT_STREAM,
  dynamoDbClientFor,
  type Emulators,
  kinesisClientFor,
  s3ClientFor,
  startEmulators,
} from './emulators.ts';

export interface LocalAws {
  url: string;
  emulators: Emulators;
  config: AwsConfig;
  writer: AwsWriter;
  services: Services;
  /** Stops the writer (flushing by default) and starts a new one on the same emulators. */
  restartWriter(options?: { flush?: boolean }): Promise<void>;
  close(): Promise<void>;
}

function port(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`not a port: ${v}`);
  return n;
}

/** Services that already run (LocalStack on :4566, or any S3, DynamoDB and Kinesis endpoints). */
export interface ExternalEndpoints {
  s3: string;
  dynamodb: string;
  kinesis: string;
  /** Resource names (defaults: those localstack/init creates). */
  bucket?: string;
  catalogTable?: string;
  stream?: string;
}

/** Emulators that are not ours to start or stop: clients for endpoints that run already. */
function existing(e: ExternalEndpoints): Emulators {
  const clients = {
    s3: s3ClientFor(e.s3),
    dynamodb: dynamoDbClientFor(e.dynamodb),
    kinesis: kinesisClientFor(e.kinesis),
  };
  return {
    s3: { endpoint: e.s3, bucket: e.bucket ?? DEFAULT_BUCKET },
    dynamodb: { endpoint: e.dynamodb, table: e.catalogTable ?? DEFAULT_CATALOG_TABLE },
    kinesis: { endpoint: e.kinesis, stream: e.stream ?? DEFAULT_STREAM },
    clients,
    stop: async () => {
      clients.s3.destroy();
      clients.dynamodb.destroy();
      clients.kinesis.destroy();
    },
  };
}

export async function startLocalAws(
  service: ServiceConfig,
  logger: Logger,
  options: { shards?: number; emulatorDataDir?: string; endpoints?: ExternalEndpoints } = {},
): Promise<LocalAws> {
  requireTokenBeyondLoopback(service.host, service.apiToken);
  const emulators = options.endpoints
    ? existing(options.endpoints)
    : await startEmulators({
        kinesisShards: options.shards ?? 2,
        dataDir: options.emulatorDataDir,
        ports: {
          s3: port(process.env.MOONLINK_S3_PORT),
          dynamodb: port(process.env.MOONLINK_DYNAMODB_PORT),
          kinesis: port(process.env.MOONLINK_KINESIS_PORT),
        },
      });
  const config: AwsConfig = {
    region: 'us-east-1',
    bucket: emulators.s3.bucket,
    prefix: 'warehouse',
    catalogTable: emulators.dynamodb.table,
    stream: emulators.kinesis.stream,
    endpoints: {
      s3: emulators.s3.endpoint,
      dynamodb: emulators.dynamodb.endpoint,
      kinesis: emulators.kinesis.endpoint,
    },
    writerUrlTemplate: '',
    writerGroups: 1,
    writerGroup: 0,
  };
  let writer = await startAwsWriter(config, service.engine, logger.child({ component: 'writer' }), {
    port: 0,
    host: '127.0.0.1',
    syncIntervalMs: 1000,
  });
  config.writerUrlTemplate = writer.api.url;
  const api = await startLocalFunctions(service, config, logger);
  const { server, services } = api;
  logger.info('local AWS emulation serving', {
    url: server.url,
    s3: emulators.s3.endpoint,
    dynamodb: emulators.dynamodb.endpoint,
    kinesis: emulators.kinesis.endpoint,
    dataDir: path.resolve(service.dataDir),
  });
  return {
    url: server.url,
    emulators,
    config,
    get writer() {
      return writer;
    },
    services,
    restartWriter: async (o = {}) => {
      const port = writer.api.port;
      await writer.close({ flush: o.flush ?? true });
      writer = await startAwsWriter(config, service.engine, logger.child({ component: 'writer' }), {
        port,
        host: '127.0.0.1',
        syncIntervalMs: 1000,
      });
    },
    close: async () => {
      await api.close();
      await writer.close({ flush: false });
      await emulators.stop();
    },
  };
}

/**
 * The public API as the functions serve it (every route group behind the local HTTP adapter),
 * on clients of their own — as separate from the writer's as two processes would be — reaching
 * the writer at `config.writerUrlTemplate`.
 */
export async function startLocalFunctions(
  service: ServiceConfig,
  config: AwsConfig,
  logger: Logger,
): Promise<{ server: LocalServer; services: Services; close(): Promise<void> }> {
  const { store, catalog, log } = awsAdapters(config, logger);
  const pool = new ParquetWorkerPool(0);
  const services: Services = {
    catalog,
    store,
    log,
    writer: httpWriterLink({ urlTemplate: config.writerUrlTemplate, groups: 1, catalog, store, logger }),
    limits: service.limits,
    logger: logger.child({ component: 'api' }),
    pool: () => pool,
    tables: new TableCache(catalog, 1000),
    reader: new SnapshotReader(store, () => pool),
  };
  const handler = createApiHandler(
    services,
    routeGroups(['health', 'tables', 'ingest', 'read', 'flush', 'catalog']),
  );
  const server: LocalServer = await startLocalServer(handler, {
    port: service.port,
    host: service.host,
    maxBodyBytes: service.limits.maxBodyBytes,
    token: service.apiToken,
  });
  return {
    server,
    services,
    close: async () => {
      await server.close();
      await log.close();
      await pool.close();
    },
  };
}
