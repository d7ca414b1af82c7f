/** Small helpers for API Gateway v2 events and responses. */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type Lsn, parseLsn, ZERO_LSN } from '../lib/lsn.ts';
import { canonicalTableName } from '../lib/schema/table-name.ts';
import type { TableSchema } from '../lib/schema/table-schema.ts';
import type { Operations } from '../lib/txn/op-batch.ts';
import { ApiError, badRequest } from './api-error.ts';
export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

/** A JSON response from already-serialized text (so exact numbers survive). */
export function jsonText(statusCode: number, body: string, headers: Record<string, string> = {}): HttpResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body };
}

export function json(statusCode: number, value: unknown): HttpResult {
  return jsonText(
    statusCode,
    JSON.stringify(value, (_k, v) =>
      typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v,
    ),
  );
}

export function noContent(): HttpResult {
  return { statusCode: 204, headers: {}, body: '' };
}

export function tableParam(event: HttpEvent): string {
  const name = event.pathParameters?.name;
  try {
    return canonicalTableName(name ?? '');
  } catch (e) {
    throw new ApiError(400, 'invalid_table_name', (e as Error).message);
  }
}

export function query(event: HttpEvent, key: string): string | undefined {
  return event.queryStringParameters?.[key];
}

export function lsnParam(event: HttpEvent, key: string): Lsn {
  try {
    return parseLsn(query(event, key)) ?? ZERO_LSN;
  } catch (e) {
    throw badRequest(`${key}: ${(e as Error).message}`);
  }
}

export function intParam(event: HttpEvent, key: string, dflt: number, min: number, max: number): number {
  const v = query(event, key);
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v)) throw badRequest(`${key} must be a non-negative integer`);
  const n = Number(v);
  if (n < min || n > max) throw badRequest(`${key} must be between ${min} and ${max}`);
  return n;
}

/** Request bodies as the local adapter received them (API Gateway events carry text only). */
const rawBodies = new WeakMap<HttpEvent, Uint8Array>();
const streamedBodies = new WeakMap<HttpEvent, StreamedBody>();

/** A body the server decoded as it arrived (NDJSON rows on the embedded server). */
export interface StreamedBody {
  schema: TableSchema;
  ops: Operations;
}

export function keepStreamedBody(event: HttpEvent, body: StreamedBody): void {
  streamedBodies.set(event, body);
}

export function streamedBodyOf(event: HttpEvent): StreamedBody | undefined {
  return streamedBodies.get(event);
}

/** Keeps the bytes a body arrived as, so a route can take them without encoding the text again. */
export function keepRawBody(event: HttpEvent, bytes: Uint8Array): void {
  rawBodies.set(event, bytes);
}

/** How many bytes the body has (the received bytes' count where the server kept them). */
export function bodyByteLength(event: HttpEvent): number {
  const raw = rawBodies.get(event);
  if (raw !== undefined) return raw.length;
  if (!event.body) return 0;
  return event.isBase64Encoded ? Math.floor((event.body.length * 3) / 4) : Buffer.byteLength(event.body);
}

/**
 * The body as UTF-8 bytes, and as text when the event had to be decoded for it (undefined when
 * the bytes came as they arrived). Empty bodies are refused.
 */
export function bodyBytes(event: HttpEvent): { bytes: Uint8Array; text: string | undefined } {
  const raw = rawBodies.get(event);
  if (raw !== undefined && raw.length > 0) return { bytes: raw, text: undefined };
  if (event.isBase64Encoded && event.body) {
    // Binary bodies (Arrow) arrive base64-encoded from API Gateway: the bytes, not UTF-8 text.
    return { bytes: Buffer.from(event.body, 'base64'), text: undefined };
  }
  const text = bodyText(event);
  return { bytes: Buffer.from(text, 'utf8'), text };
}

export function bodyText(event: HttpEvent): string {
  if (event.body === undefined || event.body === null || event.body === '')
    throw badRequest('request body is empty');
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

export function header(event: HttpEvent, name: string): string | undefined {
  const h = event.headers ?? {};
  return h[name] ?? h[name.toLowerCase()];
}
