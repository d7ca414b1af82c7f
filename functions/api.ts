/**
 * The public API as one middy handler over API Gateway v2 events (see DESIGN.md "Public API").
 * Lambda entry points (functions/lambda/) and the local HTTP adapter both call it, so there is
 * one implementation of every route.
 */
import middy from '@middy/core';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import httpRouterHandler, { type Route } from '@middy/http-router';
import type { Context } from 'aws-lambda';
import type { HttpEvent, HttpResult } from './http.ts';
import { json } from './http.ts';
import { apiMiddleware } from './middleware.ts';
import { fileRoute } from './routes/files.ts';
import { flushRoute } from './routes/flush.ts';
import { healthRoute } from './routes/health.ts';
import { writeRowsRoute } from './routes/rows.ts';
import { scanRoute } from './routes/scan.ts';
import { releaseLeaseRoute, snapshotRoute } from './routes/snapshot.ts';
import { createTableRoute, describeTableRoute, dropTableRoute, listTablesRoute } from './routes/tables.ts';
import type { Services } from './services.ts';

type RouteFn = (event: HttpEvent, s: Services) => Promise<HttpResult>;

export interface RouteSpec {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  fn: RouteFn;
  /**
   * The body goes through middy's JSON body parser. Not for writes: their routes parse exactly
   * (a JSON number beyond 2^53 must keep its digits).
   */
  jsonBody?: true;
}

/** Every route, named by the function group that serves it on AWS. */
export const ROUTES: Record<'ingest' | 'tables' | 'read' | 'flush' | 'health' | 'files', RouteSpec[]> = {
  health: [
    { method: 'GET', path: '/health', fn: healthRoute },
    { method: 'GET', path: '/health/live', fn: async () => json(200, { status: 'alive' }) },
  ],
  tables: [
    { method: 'POST', path: '/tables', fn: createTableRoute, jsonBody: true },
    { method: 'GET', path: '/tables', fn: listTablesRoute },
    { method: 'GET', path: '/tables/{name}', fn: describeTableRoute },
    { method: 'DELETE', path: '/tables/{name}', fn: dropTableRoute },
  ],
  ingest: [{ method: 'POST', path: '/tables/{name}/rows', fn: writeRowsRoute }],
  read: [
    { method: 'GET', path: '/tables/{name}/snapshot', fn: snapshotRoute },
    { method: 'GET', path: '/tables/{name}/rows', fn: scanRoute },
    { method: 'DELETE', path: '/leases/{id}', fn: releaseLeaseRoute },
  ],
  flush: [{ method: 'POST', path: '/tables/{name}/flush', fn: flushRoute }],
  files: [{ method: 'GET', path: '/files/{proxy+}', fn: fileRoute }],
};

export type ApiHandler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** A route's handler, with middy's JSON body parser in front where the route asks for it. */
function routeHandler(r: RouteSpec, services: Services): (event: HttpEvent) => Promise<HttpResult> {
  const fn = (event: HttpEvent): Promise<HttpResult> => r.fn(event, services);
  if (!r.jsonBody) return fn;
  return middy<HttpEvent, HttpResult>(fn).use(
    httpJsonBodyParser({ disableContentTypeError: true }) as middy.MiddlewareObj<HttpEvent, HttpResult>,
  ) as unknown as (event: HttpEvent) => Promise<HttpResult>;
}

/** A handler serving the given route groups with these services. */
export function createApiHandler(services: Services, groups: (keyof typeof ROUTES)[]): ApiHandler {
  const routes: Route<HttpEvent, HttpResult>[] = groups.flatMap((g) =>
    ROUTES[g].map((r) => ({ method: r.method, path: r.path, handler: routeHandler(r, services) })),
  );
  const router = httpRouterHandler<HttpEvent, HttpResult>(routes);
  const handler = apiMiddleware(
    router as unknown as (e: HttpEvent, c: Context) => Promise<HttpResult>,
    services.limits,
    services.logger,
  );
  return (event, context) => handler(event, context);
}
