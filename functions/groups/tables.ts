/** Routes of the public API: tables: create, list, describe, drop, rename, schema changes, imports (the tables function on AWS). Each Lambda bundle holds only its own groups. */
import type { RouteSpec } from '../route-spec.ts';
import { importStatusRoute, startImportRoute } from '../routes/imports.ts';
import { changeSchemaRoute, resyncSourceRoute } from '../routes/schema.ts';
import {
  createTableRoute,
  describeTableRoute,
  dropTableRoute,
  listTablesRoute,
  renameTableRoute,
} from '../routes/tables.ts';

export const routes: RouteSpec[] = [
  { method: 'POST', path: '/tables', fn: createTableRoute, jsonBody: true },
  { method: 'GET', path: '/tables', fn: listTablesRoute },
  { method: 'GET', path: '/tables/{name}', fn: describeTableRoute },
  { method: 'DELETE', path: '/tables/{name}', fn: dropTableRoute },
  { method: 'POST', path: '/tables/{name}/rename', fn: renameTableRoute, jsonBody: true },
  { method: 'POST', path: '/tables/{name}/schema', fn: changeSchemaRoute, jsonBody: true },
  { method: 'POST', path: '/tables/{name}/source/resync', fn: resyncSourceRoute },
  { method: 'POST', path: '/tables/{name}/imports', fn: startImportRoute, jsonBody: true },
  { method: 'GET', path: '/tables/{name}/imports/{id}', fn: importStatusRoute },
];
