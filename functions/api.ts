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
import { apiMiddleware } from './middleware.ts';
import type { RouteSpec } from './route-spec.ts';
import type { Services } from './services.ts';

export type { RouteSpec } from './route-spec.ts';

export type ApiHandler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** A route's handler, with middy's JSON body parser in front where the route asks for it. */
function routeHandler(r: RouteSpec, services: Services): (event: HttpEvent) => Promise<HttpResult> {
  const fn = (event: HttpEvent): Promise<HttpResult> => r.fn(event, services);
  if (!r.jsonBody) return fn;
  return middy<HttpEvent, HttpResult>(fn).use(
    httpJsonBodyParser({ disableContentTypeError: true }) as middy.MiddlewareObj<HttpEvent, HttpResult>,
  ) as unknown as (event: HttpEvent) => Promise<HttpResult>;
}

/**
 * A handler serving the given route groups (functions/groups/; every group at once:
 * functions/all-routes.ts) with these services.
 */
export function createApiHandler(services: Services, groups: RouteSpec[][]): ApiHandler {
  const routes: Route<HttpEvent, HttpResult>[] = groups.flatMap((g) =>
    g.map((r) => ({ method: r.method, path: r.path, handler: routeHandler(r, services) })),
  );
  const router = httpRouterHandler<HttpEvent, HttpResult>(routes);
  const handler = apiMiddleware(
    router as unknown as (e: HttpEvent, c: Context) => Promise<HttpResult>,
    services.limits,
    services.logger,
  );
  return (event, context) => handler(event, context);
}
