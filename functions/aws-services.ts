/**
 * Services of the Lambda functions: S3, DynamoDB and Kinesis from the environment the CDK stack
 * sets, the owning writer over HTTP, Parquet decoded in the calling thread (a function serves
 * one request at a time). Built once per container, on first use.
 */

import type { STSClient } from '@aws-sdk/client-sts';
import { awsAdapters } from '../lib/aws/aws-adapters.ts';
import { type AwsConfig, awsConfigFromEnv } from '../lib/aws/aws-config.ts';
import { vendTableCredentials } from '../lib/aws/vended-credentials.ts';
import { engineOptionsFromEnv, limitsFromEnv } from '../lib/config.ts';
import { tableRootOf } from '../lib/engine/table-paths.ts';
import { ParquetWorkerPool } from '../lib/parquet/worker-pool.ts';
import { SnapshotReader } from '../lib/read/snapshot-reader.ts';
import type { ObjectStore } from '../lib/store/object-store.ts';
import { JsonLogger } from '../lib/util/logger.ts';
import { type Services, TableCache } from './services.ts';
import { httpWriterLink } from './writer-link-http.ts';

let services: Services | undefined;

/**
 * The `config` of the REST catalog's LoadTableResult on AWS: the region, and with vended
 * credentials asked for, read-only credentials for the table's prefix (lib/aws/vended-credentials.ts).
 */
export function icebergTableConfigFor(
  config: AwsConfig,
  store: ObjectStore,
  // Loaded on the first vended-credentials request: every function bundles this file, and the
  // STS client would otherwise cost each one's cold start.
  sts: () => Promise<STSClient> = async () =>
    new (await import('@aws-sdk/client-sts')).STSClient({ region: config.region }),
): NonNullable<Services['icebergTableConfig']> {
  let client: STSClient | undefined;
  return async (table, options) => {
    const base = { 'client.region': config.region };
    if (!options.vendedCredentials) return { config: base };
    // Without a read role (a deployment other than the stack's) the header is ignored, as the
    // spec allows: PyIceberg sends it by default, and its own credentials may well suffice.
    if (!config.vendedRoleArn) return { config: base };
    client ??= await sts();
    // s3://bucket/<prefix>tables/... → the key prefix within the bucket.
    const keyPrefix = `${store.uri(tableRootOf(table)).replace(/^s3:\/\/[^/]+\//, '')}/`;
    return vendTableCredentials(client, {
      roleArn: config.vendedRoleArn,
      bucket: config.bucket,
      keyPrefix,
      region: config.region,
    });
  };
}

export function awsServices(env: Record<string, string | undefined> = process.env): Services {
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
    icebergTableConfig: icebergTableConfigFor(config, store),
  };
  return services;
}
