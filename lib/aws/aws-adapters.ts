/** The AWS adapters (S3, DynamoDB, Kinesis) built from configuration, emulator endpoints included. */

import { NodeHttpHandler } from '@smithy/node-http-handler';
import { DynamoDbCatalog } from '../catalog/dynamodb-catalog.ts';
import { KinesisLog } from '../log/kinesis-log.ts';
import { S3ObjectStore } from '../store/s3-object-store.ts';
import type { Operations } from '../txn/op-batch.ts';
import type { Logger } from '../util/logger.ts';
import type { AwsConfig } from './aws-config.ts';

export interface AwsAdapters {
  store: S3ObjectStore;
  catalog: DynamoDbCatalog;
  log: KinesisLog<Operations>;
  /** The S3 client settings (emulator endpoint included), for other buckets (import sources). */
  s3Config: Record<string, unknown>;
}

/** Client settings for one service: the region, and for an emulator its endpoint, credentials, HTTP/1.1. */
export function clientConfigFor(config: AwsConfig, endpoint: string | undefined): Record<string, unknown> {
  if (!endpoint) return { region: config.region };
  // Emulators: fixed credentials unless the environment has its own, HTTP/1.1.
  return {
    region: config.region,
    endpoint,
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'S3RVER',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'S3RVER',
    },
    requestHandler: new NodeHttpHandler({ connectionTimeout: 2000, requestTimeout: 15_000 }),
  };
}

export function awsAdapters(config: AwsConfig, logger: Logger): AwsAdapters {
  const s3 = clientConfigFor(config, config.endpoints.s3);
  if (config.endpoints.s3) {
    Object.assign(s3, {
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }
  return {
    s3Config: s3,
    store: new S3ObjectStore({ bucket: config.bucket, prefix: config.prefix, clientConfig: s3 }),
    catalog: new DynamoDbCatalog({
      tableName: config.catalogTable,
      clientConfig: clientConfigFor(config, config.endpoints.dynamodb),
    }),
    log: new KinesisLog<Operations>({
      streamName: config.stream,
      clientConfig: clientConfigFor(config, config.endpoints.kinesis),
      compress: config.compressRecords ?? true,
      ...(config.kinesisConsumerArn ? { consumerArn: config.kinesisConsumerArn } : {}),
      onError: (error, context) => logger.warn('kinesis retrying', { ...context, error }),
    }),
  };
}
