/**
 * Services of the Lambda functions: S3, DynamoDB and Kinesis from the environment the CDK stack
 * sets, the owning writer over HTTP, Parquet decoded in the calling thread (a function serves
 * one request at a time). Built once per container, on first use.
 */

import { awsAdapters } from '../lib/aws/aws-adapters.ts';
import { type AwsConfig, awsConfigFromEnv } from '../lib/aws/aws-config.ts';
import { engineOptionsFromEnv, limitsFromEnv } from '../lib/config.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { SnapshotReader } from '../lib/read/snapshot-reader.ts';
import type { ObjectStore } from '../lib/store/object-store.ts';
import { JsonLogger } from '../lib/util/logger.ts';
import { type Services, TableCache } from './services.ts';
import { httpWriterLink } from './writer-link-http.ts';

let services: Services | undefined;

/**
 * The services, built once. `tableConfig` is the REST catalog's table `config` (vended
 * credentials, functions/vended-table-config.ts): only the tables function passes it, so the
 * STS client is in its bundle alone.
 */
export function awsServices(
  env: Record<string, string | undefined> = process.env,
  tableConfig?: (config: AwsConfig, store: ObjectStore) => NonNullable<Services['icebergTableConfig']>,
): Services {
  if (services) return services;
  const logger = new JsonLogger({ service: env.POWERTOOLS_SERVICE_NAME ?? 'moonlink-api' });
  const config = awsConfigFromEnv(env);
  const { store, catalog, log } = awsAdapters(config, logger);
  const engine = engineOptionsFromEnv(env);
  let pool: ParquetWorkerPool | undefined;
  const poolOf = (): ParquetWorkerPool => {
    pool ??= new ParquetWorkerPool(0);
    return pool;
  };
  services = {
    catalog,
    store,
    log,
    writer: httpWriterLink({
      urlTemplate: config.writerUrlTemplate,
      groups: config.writerGroups,
      catalog,
      store,
      logger,
    }),
    limits: limitsFromEnv(engine, env),
    logger,
    pool: poolOf,
    tables: new TableCache(catalog, 5000),
    reader: new SnapshotReader(store, poolOf),
    ...(tableConfig ? { icebergTableConfig: tableConfig(config, store) } : {}),
  };
  return services;
}
