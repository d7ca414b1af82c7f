/**
 * The middy stack every API handler shares: request ids and structured access logs, size and
 * rate limits, and errors turned into `{"error": {...}}` (http-error-handler is the last net).
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import httpErrorHandler from '@middy/http-error-handler';
import type { Context } from 'aws-lambda';
import type { Logger } from '../lib/util/logger.ts';
import { ApiError, errorBody, icebergErrorBody, toApiError } from './api-error.ts';
import { bodyByteLength, type HttpEvent, type HttpResult } from './http.ts';
import type { ApiLimits } from './services.ts';

type Handler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** Per-client token buckets (one process; API Gateway throttling covers the AWS deployment). */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly perSecond: number) {}
  allow(client: string): boolean {
    if (this.perSecond <= 0) return true;
    const now = Date.now();
    const b = this.buckets.get(client) ?? { tokens: this.perSecond, at: now };
    b.tokens = Math.min(this.perSecond, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(client, b);
      return false;
    }
    b.tokens -= 1;
    this.buckets.set(client, b);
    if (this.buckets.size > 10_000) this.buckets.clear();
    return true;
  }
}

export function apiMiddleware(
  router: Handler,
  limits: ApiLimits,
  logger: Logger,
): middy.MiddyfiedHandler<HttpEvent, HttpResult> {
  const limiter = new RateLimiter(limits.rateLimitPerSecond);
  const started = new WeakMap<object, number>();
  // CloudWatch metrics (embedded metric format) on Lambda, where the stack sets a namespace;
  // nothing is printed elsewhere.
  const metrics = process.env.POWERTOOLS_METRICS_NAMESPACE
    ? new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE })
    : undefined;
  const count = (name: string, value = 1): void => {
    metrics?.addMetric(name, MetricUnit.Count, value);
  };
  const handler = middy<HttpEvent, HttpResult>(router);
  // First in, so its after/onError run last: it publishes what the others recorded.
  if (metrics) handler.use(logMetrics(metrics));
  return handler
    .use(
      httpErrorHandler({
        logger: false,
        fallbackMessage: JSON.stringify({ error: { code: 'internal', message: 'internal error' } }),
      }),
    )
    .use({
      before: (request) => {
        started.set(request.event, Date.now());
        const e = request.event;
        const client = e.requestContext?.http?.sourceIp ?? 'unknown';
        if (!limiter.allow(client)) {
          throw new ApiError(
            429,
            'rate_limited',
            `more than ${limits.rateLimitPerSecond} requests per second`,
            {},
            { 'Retry-After': '1' },
          );
        }
        const size = bodyByteLength(e);
        if (size > limits.maxBodyBytes) {
          throw new ApiError(
            413,
            'payload_too_large',
            `request body of ${size} bytes exceeds the limit of ${limits.maxBodyBytes}`,
          );
        }
      },
      after: (request) => {
        const e = request.event;
        count('Requests');
        metrics?.addMetric('Latency', MetricUnit.Milliseconds, Date.now() - (started.get(e) ?? Date.now()));
        logger.info('request', {
          method: e.requestContext?.http?.method,
          path: e.rawPath,
          status: request.response?.statusCode,
          ms: Date.now() - (started.get(e) ?? Date.now()),
          requestId: e.requestContext?.requestId,
        });
      },
      onError: (request) => {
        const err = toApiError(request.error);
        const e = request.event;
        count(err.statusCode >= 500 ? 'ServerErrors' : 'ClientErrors');
        const log = err.statusCode >= 500 ? logger.error.bind(logger) : logger.info.bind(logger);
        log('request failed', {
          method: e.requestContext?.http?.method,
          path: e.rawPath,
          status: err.statusCode,
          code: err.code,
          // Client errors quote the offending value; keep row data out of the logs.
          ...(err.statusCode >= 500
            ? { error: request.error }
            : err.details.index !== undefined
              ? { index: err.details.index }
              : {}),
          requestId: e.requestContext?.requestId,
        });
        request.response = {
          statusCode: err.statusCode,
          headers: { 'content-type': 'application/json', ...err.headers },
          // The Iceberg REST catalog answers in its spec's error shape.
          body: e.rawPath?.startsWith('/iceberg/') ? icebergErrorBody(err) : errorBody(err),
        };
      },
    });
}
