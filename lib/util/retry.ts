/**
 * Retrying, in one place: which failures are worth another attempt (transient) and which are
 * not (permanent), and the back-off between attempts. The engine's policies are named here
 * (`RETRY`), so what retries how often can be read in one table:
 *
 * | policy   | what                                            | attempts | back-off            |
 * |----------|-------------------------------------------------|----------|---------------------|
 * | put      | an unconditional put of an immutable object     | 3        | 10 ms doubling      |
 * | pointer  | the catalog pointer update after an Iceberg commit | 6     | 20 ms doubling      |
 * | commit   | an Iceberg commit a flush request waits for     | 7        | 200 ms doubling, ≤ 10 s |
 * | flush    | a MemSlice → Parquet write (never given up)     | ∞        | 100 ms doubling, ≤ 30 s |
 * | snapshot | publishing a read snapshot (never given up)     | ∞        | 200 ms              |
 *
 * The AWS adapters' request retries (throttling, 5xx, resets; full jitter) are in
 * `aws-retry.ts`, which classifies AWS errors by name.
 */

import { type Clock, systemClock } from './clock.ts';

export interface BackoffPolicy {
  /** Attempts in all, the first included (Infinity: never give up). */
  maxAttempts: number;
  /** Delay after the first failure, ms. */
  firstDelayMs: number;
  /** Each further failure multiplies the delay by this (1: constant). */
  factor: number;
  maxDelayMs: number;
}

export const RETRY = {
  put: { maxAttempts: 3, firstDelayMs: 10, factor: 2, maxDelayMs: 1000 },
  pointer: { maxAttempts: 6, firstDelayMs: 20, factor: 2, maxDelayMs: 2000 },
  commit: { maxAttempts: 7, firstDelayMs: 200, factor: 2, maxDelayMs: 10_000 },
  flush: { maxAttempts: Number.POSITIVE_INFINITY, firstDelayMs: 100, factor: 2, maxDelayMs: 30_000 },
  snapshot: { maxAttempts: Number.POSITIVE_INFINITY, firstDelayMs: 200, factor: 1, maxDelayMs: 200 },
} as const satisfies Record<string, BackoffPolicy>;

/** The delay before attempt `failures + 1`, after `failures` (≥ 1) failed attempts. */
export function backoffDelay(policy: BackoffPolicy, failures: number): number {
  return Math.min(policy.maxDelayMs, policy.firstDelayMs * policy.factor ** Math.max(0, failures - 1));
}

/**
 * Failures of one operation retried across events (the loop's flushes and commits): `failed()`
 * says how long to wait before the next attempt, or undefined once the attempts are used up
 * (the count starts again after that, as after `succeeded()`).
 */
export class Backoff {
  private count = 0;

  constructor(readonly policy: BackoffPolicy) {}

  get failures(): number {
    return this.count;
  }

  failed(): number | undefined {
    this.count++;
    if (this.count >= this.policy.maxAttempts) {
      this.count = 0;
      return undefined;
    }
    return backoffDelay(this.policy, this.count);
  }

  succeeded(): void {
    this.count = 0;
  }
}

/** An error no retry can help with (the operation is wrong, or another writer owns the table). */
export class PermanentError extends Error {
  readonly permanent = true;
}

/**
 * Transient unless marked permanent: an error with `permanent: true` (PermanentError and the
 * errors that extend it or set it, such as the catalog's FencedError), or a programming error.
 */
export function isTransient(e: unknown): boolean {
  if (e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError) return false;
  return !(typeof e === 'object' && e !== null && (e as { permanent?: unknown }).permanent === true);
}

export interface RetryingOptions {
  clock?: Clock;
  /** Whether a failure may be retried (default {@link isTransient}). */
  transient?: (e: unknown) => boolean;
  onRetry?: (e: unknown, attempt: number, delayMs: number) => void;
}

/** Runs `fn` until it succeeds, a failure is permanent, or the policy's attempts are used up. */
export async function retrying<T>(
  policy: BackoffPolicy,
  fn: (attempt: number) => Promise<T>,
  o: RetryingOptions = {},
): Promise<T> {
  const transient = o.transient ?? isTransient;
  const clock = o.clock ?? systemClock;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= policy.maxAttempts || !transient(e)) throw e;
      const delay = backoffDelay(policy, attempt);
      o.onRetry?.(e, attempt, delay);
      await clock.sleep(delay);
    }
  }
}
