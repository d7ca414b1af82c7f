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
import { OPENAPI } from './openapi.ts';
import { fileRoute } from './routes/files.ts';
import { flushRoute } from './routes/flush.ts';
import { healthRoute } from './routes/health.ts';
import {
  commitIcebergTableRoute,
  configRoute,
  createIcebergTableRoute,
  createNamespaceRoute,
  dropIcebergTableRoute,
  dropNamespaceRoute,
  ICEBERG_PREFIX,
  icebergMetricsRoute,
  icebergTableExistsRoute,
  listIcebergTablesRoute,
  listNamespacesRoute,
  loadIcebergTableRoute,
  loadNamespaceRoute,
  namespaceExistsRoute,
  renameIcebergTableRoute,
  updateNamespacePropertiesRoute,
} from './routes/iceberg-catalog.ts';
import { importStatusRoute, startImportRoute } from './routes/imports.ts';
import { writeRowsRoute } from './routes/rows.ts';
import { scanRoute } from './routes/scan.ts';
import { releaseLeaseRoute, snapshotRoute } from './routes/snapshot.ts';
import {
  createTableRoute,
  describeTableRoute,
  dropTableRoute,
  listTablesRoute,
  renameTableRoute,
} from './routes/tables.ts';
import type { Services } from './services.ts';

type RouteFn = (event: HttpEvent, s: Services) => Promise<HttpResult>;

export interface RouteSpec {
  method: 'GET' | 'POST' | 'DELETE' | 'HEAD';
  path: string;
  fn: RouteFn;
  /**
   * The body goes through middy's JSON body parser. Not for writes: their routes parse exactly
   * (a JSON number beyond 2^53 must keep its digits).
   */
  jsonBody?: true;
}

/** Every route, named by the function group that serves it on AWS. */
const NS = `${ICEBERG_PREFIX}/namespaces/{namespace}`;
const TABLE = `${NS}/tables/{table}`;

export const ROUTES: Record<
  'ingest' | 'tables' | 'read' | 'flush' | 'health' | 'files' | 'catalog',
  RouteSpec[]
> = {
  health: [
    { method: 'GET', path: '/health', fn: healthRoute },
    { method: 'GET', path: '/health/live', fn: async () => json(200, { status: 'alive' }) },
    { method: 'GET', path: '/openapi.json', fn: async () => json(200, OPENAPI) },
  ],
  tables: [
    { method: 'POST', path: '/tables', fn: createTableRoute, jsonBody: true },
    { method: 'GET', path: '/tables', fn: listTablesRoute },
    { method: 'GET', path: '/tables/{name}', fn: describeTableRoute },
    { method: 'DELETE', path: '/tables/{name}', fn: dropTableRoute },
    { method: 'POST', path: '/tables/{name}/rename', fn: renameTableRoute, jsonBody: true },
    { method: 'POST', path: '/tables/{name}/imports', fn: startImportRoute, jsonBody: true },
    { method: 'GET', path: '/tables/{name}/imports/{id}', fn: importStatusRoute },
  ],
  ingest: [{ method: 'POST', path: '/tables/{name}/rows', fn: writeRowsRoute }],
  read: [
    { method: 'GET', path: '/tables/{name}/snapshot', fn: snapshotRoute },
    { method: 'GET', path: '/tables/{name}/rows', fn: scanRoute },
    { method: 'DELETE', path: '/leases/{id}', fn: releaseLeaseRoute },
  ],
  flush: [{ method: 'POST', path: '/tables/{name}/flush', fn: flushRoute }],
  files: [{ method: 'GET', path: '/files/{proxy+}', fn: fileRoute }],
  // The Iceberg REST catalog (functions/routes/iceberg-catalog.ts).
  catalog: [
    { method: 'GET', path: `${ICEBERG_PREFIX}/config`, fn: configRoute },
    { method: 'GET', path: `${ICEBERG_PREFIX}/namespaces`, fn: listNamespacesRoute },
    { method: 'POST', path: `${ICEBERG_PREFIX}/namespaces`, fn: createNamespaceRoute, jsonBody: true },
    { method: 'GET', path: NS, fn: loadNamespaceRoute },
    { method: 'HEAD', path: NS, fn: namespaceExistsRoute },
    { method: 'DELETE', path: NS, fn: dropNamespaceRoute },
    { method: 'POST', path: `${NS}/properties`, fn: updateNamespacePropertiesRoute, jsonBody: true },
    { method: 'GET', path: `${NS}/tables`, fn: listIcebergTablesRoute },
    { method: 'POST', path: `${NS}/tables`, fn: createIcebergTableRoute, jsonBody: true },
    { method: 'GET', path: TABLE, fn: loadIcebergTableRoute },
    { method: 'HEAD', path: TABLE, fn: icebergTableExistsRoute },
    { method: 'POST', path: TABLE, fn: commitIcebergTableRoute, jsonBody: true },
    { method: 'DELETE', path: TABLE, fn: dropIcebergTableRoute },
    { method: 'POST', path: `${TABLE}/metrics`, fn: icebergMetricsRoute },
    { method: 'POST', path: `${ICEBERG_PREFIX}/tables/rename`, fn: renameIcebergTableRoute, jsonBody: true },
  ],
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
