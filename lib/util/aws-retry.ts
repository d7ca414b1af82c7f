/**
 * Retries for the AWS adapters (S3, DynamoDB, Kinesis): exponential backoff with full jitter on
 * throttling, 5xx, timeouts and connection resets.
 *
 * The adapters build their own clients with the SDK's retries off (`maxAttempts: 1`) and retry
 * here instead, for three reasons: the whole operation is retried (an S3 GET whose body stream
 * is reset half-way is retried too, which the SDK does not do), the adapter learns whether an
 * earlier attempt may have landed (an "uncertain" failure: a 5xx, a timeout or a reset after
 * the request was sent) and can then check instead of trusting a retry's answer, and the SDK's
 * retry-token bucket cannot run dry during a long throttling spell and turn it into errors.
 */

import {
  isThrottlingError as smithyThrottling,
  isTransientError as smithyTransient,
} from '@smithy/core/retry';

export interface RetryOptions {
  /** Attempts in all, the first included (default 8). */
  maxAttempts?: number;
  /** First backoff ceiling in ms; doubles per attempt (default 50). */
  baseDelayMs?: number;
  /** Largest backoff ceiling in ms (default 5000). */
  maxDelayMs?: number;
  /** Give up (rethrow the last error) rather than start an attempt after this many ms. */
  deadlineMs?: number;
}

export interface ResolvedRetry {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  deadlineMs: number;
}

export function resolveRetry(o: RetryOptions = {}): ResolvedRetry {
  const maxAttempts = o.maxAttempts ?? 8;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError('maxAttempts must be ≥ 1');
  return {
    maxAttempts,
    baseDelayMs: o.baseDelayMs ?? 50,
    maxDelayMs: o.maxDelayMs ?? 5000,
    deadlineMs: o.deadlineMs ?? Number.POSITIVE_INFINITY,
  };
}

/**
 * Error names/codes AWS services use for throttling: the request was rejected, nothing was done.
 * The SDK's own classifiers (`@smithy/core/retry`: isThrottlingError, isTransientError) are asked
 * first; these lists add the names they lack (S3's SlowDown variants, DynamoDB's, KMS's).
 */
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'LimitExceededException',
  'SlowDown',
  'PriorRequestNotComplete',
  'KMSThrottlingException',
  'TransactionInProgressException',
  'EC2ThrottledException',
]);

/** Error names/codes for transient server-side failures (the request may or may not have landed). */
const TRANSIENT = new Set([
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'RequestTimeout',
  'RequestTimeoutException',
  'ConditionalRequestConflict',
  'TimeoutError',
  'KMSInternalException',
]);

/** Node network error codes worth another try. */
const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

interface AwsLikeError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
  $response?: { statusCode?: number };
}

function fields(e: unknown): AwsLikeError {
  return e !== null && typeof e === 'object' ? (e as AwsLikeError) : {};
}

export function httpStatusOf(e: unknown): number | undefined {
  const f = fields(e);
  return f.$metadata?.httpStatusCode ?? f.$response?.statusCode;
}

export function errorName(e: unknown): string | undefined {
  const f = fields(e);
  return f.name ?? f.Code ?? f.code;
}

export function isThrottling(e: unknown): boolean {
  const f = fields(e);
  return (
    smithyThrottling(e as Parameters<typeof smithyThrottling>[0]) ||
    THROTTLING.has(f.name ?? '') ||
    THROTTLING.has(f.Code ?? '') ||
    f.$retryable?.throttling === true ||
    httpStatusOf(e) === 429
  );
}

function isNetwork(e: unknown): boolean {
  const f = fields(e);
  if (NETWORK.has(f.code ?? '') || NETWORK.has(f.name ?? '')) return true;
  const m = f.message ?? '';
  return /socket hang up|ECONNRESET|EPIPE|network|timed? ?out/i.test(m) && httpStatusOf(e) === undefined;
}

/** True when another attempt may succeed. */
export function isRetryable(e: unknown): boolean {
  const f = fields(e);
  if (f.name === 'AbortError') return false;
  if (isThrottling(e)) return true;
  if (TRANSIENT.has(f.name ?? '') || TRANSIENT.has(f.Code ?? '')) return true;
  if (smithyTransient(e as Parameters<typeof smithyTransient>[0])) return true;
  if (f.$retryable) return true;
  const status = httpStatusOf(e);
  if (status !== undefined && status >= 500) return true;
  return isNetwork(e);
}

/**
 * True when the failed attempt may have been carried out by the service (its answer was lost):
 * a 5xx, a timeout, a connection reset. Throttling and refused connections are definite "no".
 */
export function mayHaveLanded(e: unknown): boolean {
  if (isThrottling(e)) return false;
  const f = fields(e);
  if (f.code === 'ECONNREFUSED' || f.code === 'ENOTFOUND' || f.code === 'EAI_AGAIN') return false;
  return isRetryable(e);
}

export function backoffDelay(attempt: number, r: ResolvedRetry): number {
  const ceiling = Math.min(r.maxDelayMs, r.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.random() * ceiling;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface AttemptInfo {
  /** 1 for the first attempt. */
  attempt: number;
  /** An earlier attempt failed in a way that may have left it carried out. */
  uncertain: boolean;
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or runs out of attempts or
 * time. `fn` learns whether an earlier attempt's outcome is unknown.
 */
export async function withRetry<T>(
  policy: ResolvedRetry,
  fn: (info: AttemptInfo) => Promise<T>,
  options: { retryable?: (e: unknown) => boolean; signal?: AbortSignal } = {},
): Promise<T> {
  const start = Date.now();
  const retryable = options.retryable ?? isRetryable;
  let uncertain = false;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn({ attempt, uncertain });
    } catch (e) {
      if (!retryable(e) || attempt >= policy.maxAttempts || options.signal?.aborted) throw e;
      const delay = backoffDelay(attempt, policy);
      if (Date.now() + delay - start > policy.deadlineMs) throw e;
      uncertain ||= mayHaveLanded(e);
      await sleep(delay, options.signal);
    }
  }
}
