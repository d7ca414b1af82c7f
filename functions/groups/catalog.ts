/** Routes of the public API: the Iceberg REST catalog, functions/routes/iceberg-catalog.ts (the tables function on AWS). Each Lambda bundle holds only its own groups. */
import type { RouteSpec } from '../route-spec.ts';
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
} from '../routes/iceberg-catalog.ts';

const NS = `${ICEBERG_PREFIX}/namespaces/{namespace}`;
const TABLE = `${NS}/tables/{table}`;

export const routes: RouteSpec[] = [
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
];
