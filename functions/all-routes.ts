/** Every route group, by the name of the function group that serves it on AWS (see functions/groups/). */
import { routes as catalog } from './groups/catalog.ts';
import { routes as files } from './groups/files.ts';
import { routes as flush } from './groups/flush.ts';
import { routes as health } from './groups/health.ts';
import { routes as ingest } from './groups/ingest.ts';
import { routes as read } from './groups/read.ts';
import { routes as tables } from './groups/tables.ts';
import type { RouteSpec } from './route-spec.ts';

export const ROUTES = { health, tables, ingest, read, flush, files, catalog } satisfies Record<
  string,
  RouteSpec[]
>;

export type RouteGroup = keyof typeof ROUTES;

export function routeGroups(names: RouteGroup[]): RouteSpec[][] {
  return names.map((n) => ROUTES[n]);
}
