/**
 * Local AWS emulation without Docker: s3rver (S3), dynalite (DynamoDB) and kinesalite (Kinesis)
 * on 127.0.0.1, on free ports, in one child process that exits when its parent goes away.
 *
 * Why a child process: s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node 20
 * only offers with `--openssl-legacy-provider`. The child is started with that flag, so a plain
 * `npx vitest run` works without NODE_OPTIONS. It also keeps the emulators' CPU off the test's
 * event loop.
 *
 * Emulator quirks the clients below are configured for (the adapters are written for real AWS):
 * - S3: path-style addressing; checksums only when an operation requires them (s3rver does not
 *   know the flexible-checksum headers); s3rver ignores `If-None-Match` on PUT.
 * - DynamoDB: dynalite has no TransactWriteItems and no TTL; conditional writes work.
 * - Kinesis: the SDK's HTTP/2 default does not talk to kinesalite; use HTTP/1.1
 *   (`NodeHttpHandler`). Streams need a provisioned shard count.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  KinesisClient,
  type KinesisClientConfig,
} from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export const EMULATOR_REGION = 'us-east-1';
export const EMULATOR_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Default resource names; localstack/init/01-create-resources.sh uses the same. */
export const DEFAULT_BUCKET = 'moonlink-data';
export const DEFAULT_CATALOG_TABLE = 'moonlink-catalog';
export const DEFAULT_STREAM = 'moonlink-log';

function handler(): NodeHttpHandler {
  return new NodeHttpHandler({
    connectionTimeout: 2000,
    requestTimeout: 15_000,
    throwOnRequestTimeout: true,
  });
}

/** An S3 client for an emulator (s3rver or LocalStack). `extra` overrides anything. */
export function s3ClientFor(endpoint: string, extra: S3ClientConfig = {}): S3Client {
  return new S3Client({
    endpoint,
    region: EMULATOR_REGION,
    credentials: EMULATOR_CREDENTIALS,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: handler(),
    maxAttempts: 1,
    ...extra,
  });
}

export function dynamoDbClientFor(endpoint: string, extra: DynamoDBClientConfig = {}): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: EMULATOR_REGION,
    credentials: EMULATOR_CREDENTIALS,
    requestHandler: handler(),
    maxAttempts: 1,
    ...extra,
  });
}

export function kinesisClientFor(endpoint: string, extra: KinesisClientConfig = {}): KinesisClient {
  return new KinesisClient({
    endpoint,
    region: EMULATOR_REGION,
    credentials: EMULATOR_CREDENTIALS,
    // kinesalite speaks HTTP/1.1 only; the SDK's default handler for Kinesis is HTTP/2.
    requestHandler: handler(),
    maxAttempts: 1,
    ...extra,
  });
}

/** Creates the catalog table with the key schema DynamoDbCatalog expects (pk/sk, on-demand). */
export async function createCatalogTable(client: DynamoDBClient, table: string): Promise<void> {
  await existing(
    client.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    ),
  );
  await waitFor(`DynamoDB table ${table}`, async () => {
    const d = await client.send(new DescribeTableCommand({ TableName: table }));
    return d.Table?.TableStatus === 'ACTIVE';
  });
}

/** Creates a stream with a provisioned shard count (kinesalite has no on-demand mode). */
export async function createStream(client: KinesisClient, stream: string, shards: number): Promise<void> {
  await existing(client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: shards })));
  await waitFor(`Kinesis stream ${stream}`, async () => {
    const d = await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    return d.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
  });
}

/** A create that finds its resource already there (kept emulator data) is fine. */
async function existing(created: Promise<unknown>): Promise<void> {
  await created.catch((e: Error) => {
    if (e.name !== 'ResourceInUseException') throw e;
  });
}

async function waitFor(what: string, ready: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    if (Date.now() > until) throw new Error(`${what} did not become ACTIVE within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface EmulatorOptions {
  /** Shards of the Kinesis stream (default 2). */
  kinesisShards?: number;
  bucket?: string;
  catalogTable?: string;
  stream?: string;
  /** Milliseconds to wait for the child process to report its ports (default 30 s). */
  startTimeoutMs?: number;
  /**
   * Keep the emulators' data in this folder (s3/, dynamodb/, kinesis/) across restarts, crashes
   * included; by default it lives in a temporary folder removed on stop.
   */
  dataDir?: string;
  /** Ports to listen on (default: free ones). */
  ports?: { s3?: number; dynamodb?: number; kinesis?: number };
}

export interface Emulators {
  s3: { endpoint: string; bucket: string };
  dynamodb: { endpoint: string; table: string };
  kinesis: { endpoint: string; stream: string };
  clients: { s3: S3Client; dynamodb: DynamoDBClient; kinesis: KinesisClient };
  /** Stops the emulators (and removes their data unless it is kept in `dataDir`). Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The child process's program (plain ESM JavaScript, run with `node -e`). It listens on
 * 127.0.0.1 port 0 for each emulator, reports the ports over IPC, and exits when told to or
 * when the IPC channel closes (the parent exited or crashed).
 */
const CHILD_PROGRAM = `
import { createRequire } from 'node:module';
import { rmSync } from 'node:fs';
const require = createRequire(process.env.MOONLINK_EMULATOR_BASE);
const S3rver = require('s3rver');
const dynalite = require('dynalite');
const kinesalite = require('kinesalite');
const opts = JSON.parse(process.env.MOONLINK_EMULATOR_OPTIONS);
const listen = (server, port) => new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port || 0, '127.0.0.1', () => resolve(server.address().port));
});
const close = (server) => new Promise((resolve) => server.close(() => resolve()));
let s3, dyn, kin, stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(code), 2000).unref();
  await Promise.allSettled([s3 && s3.close(), dyn && close(dyn), kin && close(kin)]);
  if (!opts.keep) try { rmSync(opts.dataDir, { recursive: true, force: true }); } catch {}
  process.exit(code);
}
process.on('disconnect', () => stop(0));
process.on('message', (m) => { if (m === 'stop') stop(0); });
try {
  s3 = new S3rver({
    address: '127.0.0.1', port: opts.ports.s3 || 0, silent: true, directory: opts.dataDir + '/s3',
    allowMismatchedSignatures: true, vhostBuckets: false, resetOnClose: !opts.keep,
    configureBuckets: [{ name: opts.bucket, configs: [] }],
  });
  const s3Address = await s3.run();
  const kept = (name) => (opts.keep ? { path: opts.dataDir + '/' + name } : {});
  dyn = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...kept('dynamodb') });
  const dynamodb = await listen(dyn, opts.ports.dynamodb);
  kin = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100, ...kept('kinesis') });
  const kinesis = await listen(kin, opts.ports.kinesis);
  process.send({ ready: true, s3: s3Address.port, dynamodb, kinesis });
} catch (e) {
  process.send({ ready: false, error: String(e && e.stack || e) });
  stop(1);
}
`;

interface ChildReport {
  ready: boolean;
  error?: string;
  s3: number;
  dynamodb: number;
  kinesis: number;
}

function startChild(
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ child: ChildProcess; ports: ChildReport }> {
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--input-type=module', '-e', CHILD_PROGRAM],
    {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '', ...env },
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 20_000) stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`emulators did not start within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once('message', (m: ChildReport) => {
      clearTimeout(timer);
      if (m.ready) resolve({ child, ports: m });
      else reject(new Error(`emulators failed to start: ${m.error}\n${stderr}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`emulator process exited with ${code} before it was ready\n${stderr}`));
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * Starts s3rver, dynalite and kinesalite, creates the bucket, the catalog table and the stream,
 * and waits until they are ACTIVE.
 */
export async function startEmulators(options: EmulatorOptions = {}): Promise<Emulators> {
  const bucket = options.bucket ?? DEFAULT_BUCKET;
  const table = options.catalogTable ?? DEFAULT_CATALOG_TABLE;
  const stream = options.stream ?? DEFAULT_STREAM;
  const keep = options.dataDir !== undefined;
  const dir = keep
    ? path.resolve(options.dataDir!)
    : await fs.mkdtemp(path.join(os.tmpdir(), 'moonlink-emulators-'));
  if (keep) await fs.mkdir(dir, { recursive: true });
  let child: ChildProcess | undefined;
  let clients: Emulators['clients'] | undefined;
  const stop = async (): Promise<void> => {
    clients?.s3.destroy();
    clients?.dynamodb.destroy();
    clients?.kinesis.destroy();
    clients = undefined;
    const c = child;
    child = undefined;
    if (c && c.exitCode === null && c.signalCode === null) {
      c.ref(); // keep this process alive until the child is gone
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      if (c.connected) c.send('stop');
      else c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    if (!keep) await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    const started = await startChild(
      {
        MOONLINK_EMULATOR_BASE: fileURLToPath(import.meta.url),
        MOONLINK_EMULATOR_OPTIONS: JSON.stringify({ dataDir: dir, keep, bucket, ports: options.ports ?? {} }),
      },
      options.startTimeoutMs ?? 30_000,
    );
    child = started.child;
    // The child must not keep the parent alive, nor the parent wait on it.
    child.unref();
    (child as unknown as { channel?: { unref(): void } }).channel?.unref();
    const endpoints = {
      s3: `http://127.0.0.1:${started.ports.s3}`,
      dynamodb: `http://127.0.0.1:${started.ports.dynamodb}`,
      kinesis: `http://127.0.0.1:${started.ports.kinesis}`,
    };
    clients = {
      s3: s3ClientFor(endpoints.s3),
      dynamodb: dynamoDbClientFor(endpoints.dynamodb),
      kinesis: kinesisClientFor(endpoints.kinesis),
    };
    // s3rver creates the bucket at start (configureBuckets); creating it again is harmless.
    await clients.s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((e: Error) => {
      if (!/BucketAlready/.test(e.name)) throw e;
    });
    await Promise.all([
      createCatalogTable(clients.dynamodb, table),
      createStream(clients.kinesis, stream, options.kinesisShards ?? 2),
    ]);
    return {
      s3: { endpoint: endpoints.s3, bucket },
      dynamodb: { endpoint: endpoints.dynamodb, table },
      kinesis: { endpoint: endpoints.kinesis, stream },
      clients,
      stop,
    };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

/** A name unique enough for a test's resources (tables, prefixes). */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}
