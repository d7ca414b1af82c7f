/**
 * The object store on Amazon S3 (or anything that speaks its API: s3rver, LocalStack, MinIO).
 *
 * - Keys live under `prefix` in `bucket`; `uri(key)` is `s3://bucket/prefix/key`.
 * - Bodies of `multipartThresholdBytes` (16 MiB) or more go up as a multipart upload in
 *   `partSizeBytes` (8 MiB) parts, several at a time; a failed upload is aborted so no parts are
 *   left behind (the bucket's lifecycle rule also aborts incomplete uploads after a day).
 * - `ifNoneMatch` sends `If-None-Match: *` (on PUT, and on CompleteMultipartUpload for large
 *   bodies); S3 answers 412 when the key exists, mapped to {@link PreconditionFailedError}. If an
 *   earlier attempt of the same put may have landed (its answer was lost), a 412 is checked: when
 *   the stored object holds exactly our bytes, the put succeeded.
 * - Every call is retried with exponential backoff and jitter on throttling (SlowDown, 503),
 *   5xx, timeouts and connection resets, whole-operation (a GET whose body stream breaks is
 *   read again). See lib/util/aws-retry.ts.
 */
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import {
  errorName,
  httpStatusOf,
  type ResolvedRetry,
  type RetryOptions,
  resolveRetry,
  withRetry,
} from '../util/aws-retry.ts';
import {
  assertSafeKey,
  NotFoundError,
  type ObjectInfo,
  type ObjectStore,
  PreconditionFailedError,
  type PutOptions,
} from './object-store.ts';

export const DEFAULT_MULTIPART_THRESHOLD = 16 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const DELETE_BATCH = 1000;

export interface S3ObjectStoreOptions {
  bucket: string;
  /** Folder inside the bucket (no leading slash); '' for the bucket's root. */
  prefix?: string;
  /** A ready client. The store retries itself: give it `maxAttempts: 1` to avoid nested retries. */
  client?: S3Client;
  /** Used to build a client when `client` is absent (SDK retries off, HTTP/1.1, timeouts). */
  clientConfig?: S3ClientConfig;
  /** Bodies of at least this many bytes use a multipart upload (default 16 MiB). */
  multipartThresholdBytes?: number;
  /** Part size of multipart uploads (default 8 MiB; S3 needs ≥ 5 MiB except for the last part). */
  partSizeBytes?: number;
  /** Parts uploaded at once (default 4). */
  multipartConcurrency?: number;
  /** Keys per ListObjectsV2 page (default 1000, S3's maximum). */
  listPageSize?: number;
  /** Retry policy: attempts (default 8), backoff base and ceiling in ms. */
  retry?: RetryOptions;
}

function normalizePrefix(p: string | undefined): string {
  const t = (p ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  return t === '' ? '' : `${t}/`;
}

function isNotFound(e: unknown): boolean {
  const n = errorName(e);
  return n === 'NoSuchKey' || n === 'NotFound' || (httpStatusOf(e) === 404 && n !== 'NoSuchBucket');
}

function isPreconditionFailed(e: unknown): boolean {
  return httpStatusOf(e) === 412 || errorName(e) === 'PreconditionFailed';
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly concurrency: number;
  private readonly retry: ResolvedRetry;
  private readonly base: string;
  private readonly listPageSize: number | undefined;

  constructor(options: S3ObjectStoreOptions) {
    if (!options.bucket) throw new Error('S3ObjectStore: bucket is required');
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix);
    this.base = `s3://${this.bucket}/${this.prefix}`;
    this.description = `s3://${this.bucket}/${this.prefix.replace(/\/$/, '')}`.replace(/\/$/, '');
    this.ownsClient = !options.client;
    this.client =
      options.client ??
      new S3Client({
        requestHandler: new NodeHttpHandler({
          connectionTimeout: 5000,
          requestTimeout: 120_000,
          throwOnRequestTimeout: true,
        }),
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        ...options.clientConfig,
        maxAttempts: options.clientConfig?.maxAttempts ?? 1,
      });
    this.threshold = options.multipartThresholdBytes ?? DEFAULT_MULTIPART_THRESHOLD;
    this.partSize = options.partSizeBytes ?? DEFAULT_PART_SIZE;
    if (this.partSize < 1) throw new RangeError('partSizeBytes must be positive');
    this.concurrency = Math.max(1, options.multipartConcurrency ?? 4);
    this.retry = resolveRetry(options.retry);
    this.listPageSize = options.listPageSize;
  }

  private full(key: string): string {
    assertSafeKey(key);
    return this.prefix + key;
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<void> {
    const full = this.full(key);
    if (body.length >= this.threshold && body.length > this.partSize) {
      await this.putMultipart(full, key, body, options);
      return;
    }
    await withRetry(this.retry, async ({ uncertain }) => {
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: full,
            Body: body,
            ContentLength: body.length,
            ContentType: options.contentType,
            IfNoneMatch: options.ifNoneMatch ? '*' : undefined,
          }),
        );
      } catch (e) {
        if (options.ifNoneMatch && isPreconditionFailed(e)) {
          // Our own earlier attempt may be what exists now.
          if (uncertain && (await this.holds(full, key, body))) return;
          throw new PreconditionFailedError(key);
        }
        throw e;
      }
    });
  }

  /** True when the object exists and holds exactly `body`. */
  private async holds(full: string, key: string, body: Uint8Array): Promise<boolean> {
    try {
      const head = await withRetry(this.retry, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: full })),
      );
      if (head.ContentLength !== body.length) return false;
      return equalBytes(await this.getFull(full, key), body);
    } catch (e) {
      if (isNotFound(e) || e instanceof NotFoundError) return false;
      throw e;
    }
  }

  private async putMultipart(
    full: string,
    key: string,
    body: Uint8Array,
    options: PutOptions,
  ): Promise<void> {
    const created = await withRetry(this.retry, () =>
      this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: full,
          ContentType: options.contentType,
        }),
      ),
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error(`S3 returned no UploadId for ${full}`);
    const count = Math.ceil(body.length / this.partSize);
    const parts: CompletedPart[] = new Array(count);
    try {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          const i = next++;
          const chunk = body.subarray(i * this.partSize, Math.min(body.length, (i + 1) * this.partSize));
          const res = await withRetry(this.retry, () =>
            this.client.send(
              new UploadPartCommand({
                Bucket: this.bucket,
                Key: full,
                UploadId: uploadId,
                PartNumber: i + 1,
                Body: chunk,
                ContentLength: chunk.length,
              }),
            ),
          );
          parts[i] = { PartNumber: i + 1, ETag: res.ETag };
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.concurrency, count) }, worker));
      await withRetry(this.retry, async ({ uncertain }) => {
        try {
          await this.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: this.bucket,
              Key: full,
              UploadId: uploadId,
              MultipartUpload: { Parts: parts },
              IfNoneMatch: options.ifNoneMatch ? '*' : undefined,
            }),
          );
        } catch (e) {
          // An earlier Complete may have landed with its answer lost: S3 then says NoSuchUpload
          // (or 412 with ifNoneMatch; s3rver says 500). If the object is ours, we are done.
          if (uncertain && (await this.holds(full, key, body))) return;
          if (options.ifNoneMatch && isPreconditionFailed(e)) throw new PreconditionFailedError(key);
          throw e;
        }
      });
    } catch (e) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: full, UploadId: uploadId }))
        .catch(() => undefined);
      throw e;
    }
  }

  private async getFull(full: string, key: string, range?: string): Promise<Uint8Array> {
    try {
      return await withRetry(this.retry, async () => {
        const res = await this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: full, Range: range }),
        );
        if (!res.Body) return new Uint8Array(0);
        return await res.Body.transformToByteArray();
      });
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(key);
      throw e;
    }
  }

  async get(key: string): Promise<Uint8Array> {
    return this.getFull(this.full(key), key);
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`invalid range offset=${offset} length=${length}`);
    }
    const full = this.full(key);
    if (length === 0) {
      if (!(await this.head(key))) throw new NotFoundError(key);
      return new Uint8Array(0);
    }
    try {
      const bytes = await this.getFull(full, key, `bytes=${offset}-${offset + length - 1}`);
      // A server that ignores Range sends everything; cut it down.
      return bytes.length > length ? bytes.slice(offset, offset + length) : bytes;
    } catch (e) {
      // The range starts at or past the end: the object exists, there are no bytes to give.
      if (httpStatusOf(e) === 416 || errorName(e) === 'InvalidRange') return new Uint8Array(0);
      throw e;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const full = this.full(key);
    try {
      const res = await withRetry(this.retry, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: full })),
      );
      return { key, size: res.ContentLength ?? 0, lastModified: res.LastModified ?? new Date(0) };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    const full = this.full(key);
    await withRetry(this.retry, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: full })),
    );
  }

  async deleteMany(keys: string[]): Promise<void> {
    const fulls = [...new Set(keys.map((k) => this.full(k)))];
    for (let i = 0; i < fulls.length; i += DELETE_BATCH) {
      let pending = fulls.slice(i, i + DELETE_BATCH);
      // Keys S3 reports as failed (e.g. InternalError, SlowDown) are sent again.
      await withRetry(this.retry, async () => {
        const res = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: pending.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        const failed = (res.Errors ?? []).filter((x) => x.Key);
        if (failed.length > 0) {
          pending = failed.map((x) => x.Key!);
          const err = new Error(
            `DeleteObjects failed for ${failed.length} keys, e.g. ${failed[0].Key}: ${failed[0].Code} ${failed[0].Message ?? ''}`,
          ) as Error & { name: string };
          err.name = failed[0].Code ?? 'InternalError';
          throw err;
        }
      });
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (prefix !== '' && !/^[A-Za-z0-9_\-.=/]+$/.test(prefix)) {
      throw new Error(`unsafe list prefix: ${JSON.stringify(prefix)}`);
    }
    let token: string | undefined;
    do {
      const page = await withRetry(this.retry, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            ContinuationToken: token,
            MaxKeys: this.listPageSize,
          }),
        ),
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key?.startsWith(this.prefix)) continue;
        yield {
          key: o.Key.slice(this.prefix.length),
          size: o.Size ?? 0,
          lastModified: o.LastModified ?? new Date(0),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  uri(key: string): string {
    assertSafeKey(key);
    return this.base + key;
  }

  keyFromUri(uri: string): string | undefined {
    // Engines write s3a:// or s3n:// for the same objects.
    const normalized = uri.replace(/^s3[an]:\/\//, 's3://');
    if (!normalized.startsWith(this.base)) return undefined;
    const key = normalized.slice(this.base.length);
    return key === '' ? undefined : key;
  }

  async readUrl(key: string, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }), {
      expiresIn: expiresInSeconds,
    });
  }

  /** Releases the client's sockets when the store built it. */
  close(): void {
    if (this.ownsClient) this.client.destroy();
  }
}
