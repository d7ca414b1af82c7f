/**
 * The local HTTP adapter: a node:http server that turns each request into an API Gateway v2
 * event, calls the same handler Lambda runs, and writes the result back. The embedded service
 * and `npm run local` serve the public API through it.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from 'aws-lambda';
import type { ApiHandler } from './api.ts';
import { ApiError, errorBody, icebergErrorBody } from './api-error.ts';
import { bearerCheck, requireTokenBeyondLoopback } from './bearer-token.ts';
import { type HttpEvent, keepRawBody, keepStreamedBody, type StreamedBody } from './http.ts';

export interface LocalServer {
  server: http.Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

function toEvent(req: http.IncomingMessage, body: Buffer): HttpEvent {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const textual = /json|text|^$/.test(headers['content-type'] ?? '');
  const now = Date.now();
  const event: HttpEvent = {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    queryStringParameters: Object.keys(query).length > 0 ? query : undefined,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
    },
    body: body.length === 0 || textual ? undefined : body.toString('base64'),
    isBase64Encoded: body.length > 0 && !textual,
  };
  // Text is made from the bytes only if something asks for it: the write routes read the bytes
  // (bodyBytes), and decoding a large body to a string costs the request thread a pass over it.
  if (textual && body.length > 0) lazyText(event, body);
  return event;
}

/** `event.body` as the UTF-8 text of `bytes`, decoded on first read (and assignable, as middy's parsers do). */
function lazyText(event: HttpEvent, bytes: Buffer): void {
  const settle = (value: unknown): void => {
    Object.defineProperty(event, 'body', { value, writable: true, configurable: true, enumerable: true });
  };
  Object.defineProperty(event, 'body', {
    configurable: true,
    enumerable: true,
    get(): string {
      const text = bytes.toString('utf8');
      settle(text);
      return text;
    },
    set: settle,
  });
}

/** Bodies from this size on are kept in shared memory. */
const SHARED_BODY_BYTES = 32 * 1024;

/**
 * A request's chunks as one buffer. A large one is in shared memory, so the worker that decodes
 * a write (lib/engine/worker-jobs.ts) reads these bytes in place: posting them copies nothing,
 * and the request thread keeps them for the log.
 */
function joinBody(chunks: Buffer[], size: number): Buffer {
  if (size < SHARED_BODY_BYTES) return Buffer.concat(chunks, size);
  const body = Buffer.from(new SharedArrayBuffer(size));
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  return body;
}

function lambdaContext(requestId: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'moonlink-local',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:moonlink-local',
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: 'local',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Takes a request's body as it arrives (see {@link startLocalServer}'s `streamBody`). */
export interface BodySink {
  push(chunk: Uint8Array): void;
  /** The decoded body, or undefined when the route must decode it itself. */
  end(): StreamedBody | undefined;
}

export function startLocalServer(
  handler: ApiHandler,
  options: {
    port: number;
    host?: string;
    maxBodyBytes: number;
    token?: string;
    /** For requests whose body is decoded as it arrives (NDJSON rows), a sink for its chunks. */
    streamBody?: (req: http.IncomingMessage) => BodySink | undefined;
  },
): Promise<LocalServer> {
  const host = options.host ?? '127.0.0.1';
  try {
    requireTokenBeyondLoopback(host, options.token);
  } catch (e) {
    return Promise.reject(e);
  }
  const authorized = options.token ? bearerCheck(options.token) : undefined;
  const server = http.createServer((req, res) => {
    // With a token, every request but the liveness probe (a container's health check) carries it.
    if (authorized && !req.url?.startsWith('/health/live') && !authorized(req.headers.authorization)) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      const refusal = new ApiError(401, 'unauthorized', 'send Authorization: Bearer <MOONLINK_API_TOKEN>');
      // The Iceberg REST catalog's clients expect its ErrorModel.
      res.end(req.url?.startsWith('/iceberg/') ? icebergErrorBody(refusal) : errorBody(refusal));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const sink = options.streamBody?.(req);
    req.on('data', (c: Buffer) => {
      if (refused) return;
      size += c.length;
      if (size > options.maxBodyBytes) {
        refused = true;
        res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
        res.end(
          JSON.stringify({
            error: {
              code: 'payload_too_large',
              message: `request body exceeds the limit of ${options.maxBodyBytes} bytes`,
            },
          }),
        );
        req.resume();
        return;
      }
      chunks.push(c);
      sink?.push(c);
    });
    req.on('end', () => {
      if (refused) return;
      const body = joinBody(chunks, size);
      const event = toEvent(req, body);
      if (!event.isBase64Encoded) keepRawBody(event, body);
      const streamed = sink?.end();
      if (streamed) keepStreamedBody(event, streamed);
      handler(event, lambdaContext(event.requestContext.requestId)).then(
        (r) => {
          const body = r.body === undefined ? '' : r.isBase64Encoded ? Buffer.from(r.body, 'base64') : r.body;
          res.writeHead(r.statusCode ?? 200, r.headers as http.OutgoingHttpHeaders);
          res.end(body);
        },
        () => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'internal', message: 'internal error' } }));
        },
      );
    });
    req.on('error', () => res.destroy());
  });
  // Requests Node's HTTP parser refuses (a space or control character in the path, a bad
  // header) get the API's JSON error body too, not a bare status line.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, code] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'headers_too_large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'request_timeout']
          : [400, 'Bad Request', 'malformed_request'];
    const body = JSON.stringify({
      error: { code, message: `the HTTP request could not be parsed (${err.code ?? err.message})` },
    });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        server,
        port,
        url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
