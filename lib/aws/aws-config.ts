/**
 * Configuration of the AWS deployment (and of `npm run local`, which points the same code at
 * emulators): resource names and, for emulators, endpoints. Set by the CDK stack on Lambda and
 * ECS; see README "AWS deployment".
 */
export interface AwsConfig {
  region: string;
  bucket: string;
  prefix: string;
  catalogTable: string;
  stream: string;
  /** Emulator endpoints (unset on AWS). */
  endpoints: { s3?: string; dynamodb?: string; kinesis?: string };
  /** Base URL of the writer owning a table, with `{group}` for its group number. */
  writerUrlTemplate: string;
  writerGroups: number;
  /** The group this process serves (writer only). */
  writerGroup: number;
  /**
   * AWS Glue registration of every table (writer only; the stack sets it when `glue` is on):
   * Glue database of namespace `ns` is `<databasePrefix><ns>`.
   */
  glue?: { databasePrefix: string; catalogId?: string };
  /** Role assumed for vended read credentials of the Iceberg REST catalog (tables function). */
  vendedRoleArn?: string;
  /** Compress log records (`MOONLINK_KINESIS_COMPRESS`, default true; docs/kinesis-records.md). */
  compressRecords?: boolean;
  /**
   * Enhanced fan-out (writer only; the stack sets it with `kinesisEnhancedFanOut`): the stream
   * consumer the writer's shard readers subscribe as (`MOONLINK_KINESIS_CONSUMER_ARN`).
   */
  kinesisConsumerArn?: string;
}

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

export function awsConfigFromEnv(env: Env = process.env): AwsConfig {
  const groups = Number(env.MOONLINK_WRITER_GROUPS ?? '1');
  const group = Number(env.MOONLINK_WRITER_GROUP ?? '0');
  if (!Number.isInteger(groups) || groups < 1)
    throw new Error('MOONLINK_WRITER_GROUPS must be a positive integer');
  if (!Number.isInteger(group) || group < 0 || group >= groups)
    throw new Error('MOONLINK_WRITER_GROUP must be in [0, MOONLINK_WRITER_GROUPS)');
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    bucket: required(env, 'MOONLINK_BUCKET'),
    prefix: env.MOONLINK_PREFIX ?? '',
    catalogTable: required(env, 'MOONLINK_CATALOG_TABLE'),
    stream: required(env, 'MOONLINK_STREAM'),
    endpoints: {
      s3: env.MOONLINK_S3_ENDPOINT || undefined,
      dynamodb: env.MOONLINK_DYNAMODB_ENDPOINT || undefined,
      kinesis: env.MOONLINK_KINESIS_ENDPOINT || undefined,
    },
    writerUrlTemplate: env.MOONLINK_WRITER_URL_TEMPLATE ?? 'http://127.0.0.1:8081',
    writerGroups: groups,
    writerGroup: group,
    ...(env.MOONLINK_GLUE_DATABASE_PREFIX
      ? {
          glue: {
            databasePrefix: env.MOONLINK_GLUE_DATABASE_PREFIX,
            ...(env.MOONLINK_GLUE_CATALOG_ID ? { catalogId: env.MOONLINK_GLUE_CATALOG_ID } : {}),
          },
        }
      : {}),
    ...(env.MOONLINK_VENDED_ROLE_ARN ? { vendedRoleArn: env.MOONLINK_VENDED_ROLE_ARN } : {}),
    compressRecords: env.MOONLINK_KINESIS_COMPRESS !== 'false',
    ...(env.MOONLINK_KINESIS_CONSUMER_ARN ? { kinesisConsumerArn: env.MOONLINK_KINESIS_CONSUMER_ARN } : {}),
  };
}
