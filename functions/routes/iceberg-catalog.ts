/**
 * The Iceberg REST catalog (apache/iceberg `open-api/rest-catalog-open-api.yaml`), served at
 * `/iceberg/v1/...` next to our own API: namespaces, tables (list, load, create, drop) and
 * commits that change table properties. This service owns the data: commits that would add
 * snapshots, change schemas, specs or refs are refused (406) with the reason; schema changes
 * go through `/tables/{name}` and then show here. Errors use the spec's `ErrorModel`
 * (middleware.ts formats every error under `/iceberg/` that way).
 */
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { TableNotReadyError } from '../../lib/catalog/catalog.ts';
import { parsePropertyChange } from '../../lib/iceberg/table-properties.ts';
import {
  createNamespace,
  dropNamespace,
  getNamespace,
  listNamespaces,
  NoSuchNamespaceError,
  tablesIn,
  updateNamespaceProperties,
} from '../../lib/namespace-admin.ts';
import { parseExactJson } from '../../lib/schema/exact-json.ts';
import { typeName } from '../../lib/schema/iceberg-type.ts';
import {
  columnPath,
  describePartitioning,
  NO_PARTITION_FIELD_ID,
  type PartitionByItem,
  parsePartitionBy,
} from '../../lib/schema/partition-spec.ts';
import { describeSortOrder, parseSortBy, type SortByItem } from '../../lib/schema/sort-order.ts';
import { DEFAULT_NAMESPACE, NAME_PART, qualifiedName } from '../../lib/schema/table-name.ts';
import {
  buildSchema,
  SchemaError,
  schemaFromIcebergJson,
  type TableDefinition,
  type TableSchema,
} from '../../lib/schema/table-schema.ts';
import { createTable, renameTable } from '../../lib/table-admin.ts';
import { ApiError } from '../api-error.ts';
import {
  bodyText,
  type HttpEvent,
  type HttpResult,
  header,
  json,
  jsonText,
  noContent,
  query,
} from '../http.ts';
import type { Services } from '../services.ts';

export const ICEBERG_PREFIX = '/iceberg/v1';

const unsupported = (message: string): ApiError => new ApiError(406, 'unsupported', message);
const bad = (message: string): ApiError => new ApiError(400, 'invalid_request', message);

// ------------------------------------------------------------------ identifiers and paging

/** The `{namespace}` path parameter: parts joined by 0x1F (`%1F`); we hold one level. */
function namespaceParam(event: HttpEvent): string {
  const raw = event.pathParameters?.namespace ?? '';
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    throw bad(`malformed namespace ${JSON.stringify(raw)}`);
  }
  return namespaceFromParts(text.split('\u001f'));
}

function namespaceFromParts(parts: unknown): string {
  if (!Array.isArray(parts) || parts.length === 0)
    throw bad('namespace: a non-empty array of names is required');
  if (parts.length > 1)
    throw unsupported(`namespace ${JSON.stringify(parts)}: only one-level namespaces are supported`);
  const [ns] = parts;
  if (typeof ns !== 'string' || !NAME_PART.test(ns))
    throw bad(
      `invalid namespace ${JSON.stringify(ns)}: use 1-128 letters, digits and underscores, not starting with a digit`,
    );
  return ns;
}

function tableNameParam(event: HttpEvent): string {
  const raw = event.pathParameters?.table ?? '';
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw bad(`malformed table name ${JSON.stringify(raw)}`);
  }
  if (!NAME_PART.test(name)) throw notFoundTable(`${event.pathParameters?.namespace ?? ''}.${name}`);
  return name;
}

const notFoundTable = (name: string): ApiError =>
  new ApiError(404, 'table_not_found', `table "${name}" does not exist`);

async function existingNamespace(s: Services, ns: string): Promise<void> {
  if (!(await getNamespace(s.catalog, ns))) throw new NoSuchNamespaceError(ns);
}

async function existingTable(
  s: Services,
  event: HttpEvent,
): Promise<{ ns: string; name: string; def: TableDefinition }> {
  const ns = namespaceParam(event);
  const name = tableNameParam(event);
  const qualified = qualifiedName(ns, name);
  const def = await s.catalog.getTable(qualified);
  if (!def) {
    await existingNamespace(s, ns);
    throw notFoundTable(`${ns}.${name}`);
  }
  return { ns, name: qualified, def };
}

/** `pageToken` is the last name of the previous page; without `pageSize` everything comes at once. */
function page<T>(event: HttpEvent, items: T[], keyOf: (t: T) => string): { items: T[]; next?: string } {
  const sizeText = query(event, 'pageSize');
  const token = query(event, 'pageToken');
  let start = 0;
  if (token) {
    start = items.findIndex((t) => keyOf(t) > token);
    if (start < 0) start = items.length;
  }
  if (sizeText === undefined || sizeText === '') return { items: items.slice(start) };
  if (!/^\d+$/.test(sizeText) || Number(sizeText) < 1) throw bad('pageSize must be a positive integer');
  const size = Math.min(Number(sizeText), 10_000);
  const slice = items.slice(start, start + size);
  return start + size < items.length
    ? { items: slice, next: keyOf(slice[slice.length - 1]) }
    : { items: slice };
}

function body(event: HttpEvent): unknown {
  if (typeof event.body === 'object' && event.body !== null) return event.body;
  return parseExactJson(bodyText(event));
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw bad(`${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}`);
  }
  return r.data;
}

const stringMap = z.record(z.string(), z.string());

// ------------------------------------------------------------------ config

export async function configRoute(): Promise<HttpResult> {
  return json(200, {
    defaults: {},
    overrides: {},
    endpoints: [
      'GET /v1/{prefix}/namespaces',
      'POST /v1/{prefix}/namespaces',
      'GET /v1/{prefix}/namespaces/{namespace}',
      'HEAD /v1/{prefix}/namespaces/{namespace}',
      'DELETE /v1/{prefix}/namespaces/{namespace}',
      'POST /v1/{prefix}/namespaces/{namespace}/properties',
      'GET /v1/{prefix}/namespaces/{namespace}/tables',
      'POST /v1/{prefix}/namespaces/{namespace}/tables',
      'GET /v1/{prefix}/namespaces/{namespace}/tables/{table}',
      'HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}',
      'POST /v1/{prefix}/namespaces/{namespace}/tables/{table}',
      'DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}',
      'POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics',
      'POST /v1/{prefix}/tables/rename',
    ],
  });
}

// ------------------------------------------------------------------ namespaces

export async function listNamespacesRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const parent = query(event, 'parent');
  if (parent) {
    // One level: a namespace has no children.
    await existingNamespace(s, namespaceFromParts(decodeURIComponent(parent).split('\u001f')));
    return json(200, { namespaces: [] });
  }
  const all = await listNamespaces(s.catalog);
  const p = page(event, all, (n) => n.name);
  return json(200, {
    namespaces: p.items.map((n) => [n.name]),
    ...(p.next ? { 'next-page-token': p.next } : {}),
  });
}

const createNamespaceRequest = z.strictObject({
  namespace: z.array(z.string()).min(1),
  properties: stringMap.optional(),
});

export async function createNamespaceRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const req = parse(createNamespaceRequest, body(event));
  const ns = namespaceFromParts(req.namespace);
  const entry = await createNamespace(s.catalog, ns, req.properties ?? {});
  return json(200, { namespace: [entry.name], properties: entry.properties });
}

export async function loadNamespaceRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const ns = namespaceParam(event);
  const entry = await getNamespace(s.catalog, ns);
  if (!entry) throw new NoSuchNamespaceError(ns);
  return json(200, { namespace: [entry.name], properties: entry.properties });
}

export async function namespaceExistsRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  await existingNamespace(s, namespaceParam(event));
  return noContent();
}

export async function dropNamespaceRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  await dropNamespace(s.catalog, namespaceParam(event));
  return noContent();
}

const updateNamespaceRequest = z.strictObject({
  removals: z.array(z.string()).optional(),
  updates: stringMap.optional(),
});

export async function updateNamespacePropertiesRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const ns = namespaceParam(event);
  const req = parse(updateNamespaceRequest, body(event));
  const updates = req.updates ?? {};
  const removals = req.removals ?? [];
  const both = removals.find((k) => Object.hasOwn(updates, k));
  if (both !== undefined)
    throw new ApiError(422, 'duplicate_property', `property "${both}" is in both removals and updates`);
  await existingNamespace(s, ns);
  return json(200, await updateNamespaceProperties(s.catalog, ns, updates, removals));
}

// ------------------------------------------------------------------ tables

export async function listIcebergTablesRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const ns = namespaceParam(event);
  await existingNamespace(s, ns);
  const names = (await tablesIn(s.catalog, ns)).map((q) =>
    ns === DEFAULT_NAMESPACE ? q : q.slice(ns.length + 1),
  );
  const p = page(event, names.sort(), (n) => n);
  return json(200, {
    identifiers: p.items.map((name) => ({ namespace: [ns], name })),
    ...(p.next ? { 'next-page-token': p.next } : {}),
  });
}

function etagOf(metadataLocation: string): string {
  return `"${createHash('sha256').update(metadataLocation).digest('hex').slice(0, 32)}"`;
}

/** The catalog pointer of a table that has Iceberg metadata (503 table_not_ready before). */
async function committedPointer(
  s: Services,
  table: string,
): Promise<{ metadataKey: string; metadataLocation: string }> {
  const pointer = await s.catalog.getPointer(table);
  if (!pointer?.metadataKey || !pointer.metadataLocation) throw new TableNotReadyError(table);
  return { metadataKey: pointer.metadataKey, metadataLocation: pointer.metadataLocation };
}

/** `LoadTableResult` from the metadata file the catalog pointer names (served byte for byte). */
async function loadTableResult(
  s: Services,
  event: HttpEvent,
  table: TableDefinition,
  status = 200,
): Promise<HttpResult> {
  const pointer = await committedPointer(s, table.name);
  const etag = etagOf(pointer.metadataLocation);
  if (status === 200 && header(event, 'if-none-match') === etag)
    return { statusCode: 304, headers: { etag }, body: '' };
  const metadata = new TextDecoder().decode(await s.store.get(pointer.metadataKey));
  const delegation = header(event, 'x-iceberg-access-delegation') ?? '';
  const access = (await s.icebergTableConfig?.(table, {
    vendedCredentials: /vended-credentials/.test(delegation),
  })) ?? { config: {} };
  const credentials = access.storageCredentials
    ? `,"storage-credentials":${JSON.stringify(access.storageCredentials)}`
    : '';
  const text = `{"metadata-location":${JSON.stringify(pointer.metadataLocation)},"metadata":${metadata},"config":${JSON.stringify(access.config)}${credentials}}`;
  return jsonText(status, text, { etag });
}

export async function loadIcebergTableRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const { def } = await existingTable(s, event);
  return loadTableResult(s, event, def);
}

export async function icebergTableExistsRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  await existingTable(s, event);
  return noContent();
}

const fieldsPresent = z.object({ fields: z.array(z.unknown()).optional() }).passthrough();

const createTableRequest = z.strictObject({
  name: z.string(),
  location: z.string().optional(),
  schema: z
    .object({
      type: z.literal('struct').optional(),
      fields: z.array(z.record(z.string(), z.unknown())).min(1),
    })
    .passthrough(),
  'partition-spec': fieldsPresent.optional(),
  'write-order': fieldsPresent.optional(),
  'stage-create': z.boolean().optional(),
  properties: stringMap.optional(),
});

export async function createIcebergTableRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const ns = namespaceParam(event);
  const req = parse(createTableRequest, body(event));
  if (!NAME_PART.test(req.name))
    throw bad(
      `invalid table name ${JSON.stringify(req.name)}: use 1-128 letters, digits and underscores, not starting with a digit`,
    );
  if (req['stage-create'])
    throw unsupported('staged creates (stage-create) are not supported: create the table directly');
  if (req.location !== undefined)
    throw bad('location: the service chooses where a table lives; leave it out');
  const properties = req.properties
    ? parsePropertyChange({ set: req.properties, remove: [] }).set
    : undefined;
  await existingNamespace(s, ns);
  let columns: { name: string; type: string; nullable: boolean }[];
  let primaryKey: string[];
  let requested: TableSchema;
  try {
    requested = schemaFromIcebergJson(req.schema as Record<string, unknown>);
    columns = requested.fields.map((f) => ({ name: f.name, type: typeName(f.type), nullable: !f.required }));
    primaryKey = requested.primaryKey;
  } catch (e) {
    throw bad(`schema: ${(e as Error).message}`);
  }
  // The spec and order name columns by the request's field ids; the table gets its own ids.
  const layout = layoutOfRequest(req['partition-spec'], req['write-order'], requested);
  const formatVersion = properties?.['format-version'] === '3' ? 3 : 2;
  const name = qualifiedName(ns, req.name);
  const def: TableDefinition = {
    name,
    tableUuid: randomUUID(),
    schema: buildSchema(columns, primaryKey),
    formatVersion,
    createdAt: new Date().toISOString(),
    ...(properties ? { properties } : {}),
  };
  try {
    if (layout.partitionBy.length > 0) {
      const { spec } = parsePartitionBy(layout.partitionBy, def.schema.fields, {
        specId: 0,
        lastPartitionId: NO_PARTITION_FIELD_ID,
      });
      def.partitionBy = describePartitioning(spec, def.schema.fields);
    }
    if (layout.sortBy.length > 0)
      def.sortBy = describeSortOrder(parseSortBy(layout.sortBy, def.schema.fields), def.schema.fields);
  } catch (e) {
    if (e instanceof SchemaError) throw bad(e.message);
    throw e;
  }
  await createTable(s.store, s.catalog, def, s.log);
  s.tables.invalidate(name);
  await s.writer.tableCreated(name);
  return loadTableResult(s, event, def, 200);
}

/** A REST create's partition-spec and write-order as `partitionBy`/`sortBy` (columns by name). */
function layoutOfRequest(
  spec: { fields?: unknown[] } | undefined,
  order: { fields?: unknown[] } | undefined,
  schema: TableSchema,
): { partitionBy: PartitionByItem[]; sortBy: SortByItem[] } {
  const nameOf = (id: unknown, what: string): string => {
    const path = typeof id === 'number' ? columnPath(schema.fields, id) : undefined;
    if (!path) throw bad(`${what}: source-id ${JSON.stringify(id)} is not a field of the schema`);
    return path;
  };
  const partitionBy = (spec?.fields ?? []).map((raw, i) => {
    const f = raw as Record<string, unknown>;
    if (typeof f.transform !== 'string') throw bad(`partition-spec.fields[${i}]: a transform is required`);
    return {
      column: nameOf(f['source-id'], `partition-spec.fields[${i}]`),
      transform: f.transform,
      ...(typeof f.name === 'string' ? { name: f.name } : {}),
    };
  });
  const sortBy = (order?.fields ?? []).map((raw, i): SortByItem => {
    const f = raw as Record<string, unknown>;
    if ((f.transform ?? 'identity') !== 'identity')
      throw unsupported(`write-order.fields[${i}]: only identity sort fields are supported`);
    return {
      column: nameOf(f['source-id'], `write-order.fields[${i}]`),
      direction: f.direction === 'desc' ? 'desc' : 'asc',
      nulls: f['null-order'] === 'nulls-last' ? 'last' : 'first',
    };
  });
  return { partitionBy, sortBy };
}

export async function dropIcebergTableRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const { name } = await existingTable(s, event);
  const purge = query(event, 'purgeRequested') === 'true';
  await s.writer.tableDropped(name, { purge });
  s.tables.invalidate(name);
  return noContent();
}

// ------------------------------------------------------------------ commits

const requirement = z.object({ type: z.string() }).passthrough();
const update = z.object({ action: z.string() }).passthrough();
const commitRequest = z.strictObject({
  identifier: z.unknown().optional(),
  requirements: z.array(requirement),
  updates: z.array(update),
});

/** Updates the spec defines that only the writer of the data may make. */
const WRITER_ONLY = new Set([
  'assign-uuid',
  'upgrade-format-version',
  'add-schema',
  'set-current-schema',
  'add-spec',
  'set-default-spec',
  'add-sort-order',
  'set-default-sort-order',
  'add-snapshot',
  'set-snapshot-ref',
  'remove-snapshots',
  'remove-snapshot-ref',
  'set-location',
  'set-statistics',
  'remove-statistics',
  'set-partition-statistics',
  'remove-partition-statistics',
  'remove-partition-specs',
  'remove-schemas',
  'enable-row-lineage',
  'add-encryption-key',
  'remove-encryption-key',
]);

/** Checks a requirement against the current metadata; a failed one is a 409 the client may retry. */
function checkRequirement(r: Record<string, unknown>, meta: Record<string, unknown>): void {
  const failed = (what: string): never => {
    throw new ApiError(409, 'commit_failed', `requirement failed: ${what}`);
  };
  const refs = (meta.refs ?? {}) as Record<string, { 'snapshot-id': number }>;
  switch (r.type) {
    case 'assert-create':
      return failed('the table already exists');
    case 'assert-table-uuid':
      if (r.uuid !== meta['table-uuid'])
        failed(`table uuid is ${String(meta['table-uuid'])}, not ${String(r.uuid)}`);
      return;
    case 'assert-ref-snapshot-id': {
      const ref = typeof r.ref === 'string' ? refs[r.ref] : undefined;
      const want = r['snapshot-id'] ?? null;
      const have = ref ? ref['snapshot-id'] : null;
      if (String(want) !== String(have))
        failed(`ref ${String(r.ref)} is at snapshot ${String(have)}, not ${String(want)}`);
      return;
    }
    case 'assert-last-assigned-field-id':
      return same('last-column-id', r['last-assigned-field-id']);
    case 'assert-current-schema-id':
      return same('current-schema-id', r['current-schema-id']);
    case 'assert-last-assigned-partition-id':
      return same('last-partition-id', r['last-assigned-partition-id']);
    case 'assert-default-spec-id':
      return same('default-spec-id', r['default-spec-id']);
    case 'assert-default-sort-order-id':
      return same('default-sort-order-id', r['default-sort-order-id']);
    default:
      throw bad(`unknown requirement type ${JSON.stringify(r.type)}`);
  }
  function same(field: string, want: unknown): void {
    if (meta[field] !== want) failed(`${field} is ${String(meta[field])}, not ${String(want)}`);
  }
}

export async function commitIcebergTableRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const { name, def } = await existingTable(s, event);
  const req = parse(commitRequest, body(event));
  // Every update is checked before anything is applied: all or nothing.
  const set: Record<string, string> = {};
  const remove: string[] = [];
  req.updates.forEach((u, i) => {
    if (u.action === 'set-properties') {
      const updates = parse(z.object({ updates: stringMap }).passthrough(), u).updates;
      Object.assign(set, updates);
    } else if (u.action === 'remove-properties') {
      remove.push(...parse(z.object({ removals: z.array(z.string()) }).passthrough(), u).removals);
    } else if (WRITER_ONLY.has(u.action)) {
      throw unsupported(
        `updates[${i}]: "${u.action}" is refused: this service writes the table's data, snapshots and schema itself; only set-properties and remove-properties may be committed from outside (schema changes go through the service's own API)`,
      );
    } else {
      throw bad(`updates[${i}]: unknown update action ${JSON.stringify(u.action)}`);
    }
  });
  const change = parsePropertyChange({ set, remove: remove.filter((k) => !Object.hasOwn(set, k)) });
  const pointer = await committedPointer(s, name);
  const meta = JSON.parse(new TextDecoder().decode(await s.store.get(pointer.metadataKey))) as Record<
    string,
    unknown
  >;
  for (const r of req.requirements) checkRequirement(r, meta);
  if (Object.keys(change.set).length > 0 || change.remove.length > 0)
    await s.writer.updateProperties(name, change);
  // The commit's result: the metadata after it (a concurrent commit may make it newer still).
  const result = await loadTableResult(s, event, def);
  const parsed = JSON.parse(result.body as string) as Record<string, unknown>;
  return jsonText(
    200,
    JSON.stringify({ 'metadata-location': parsed['metadata-location'], metadata: parsed.metadata }),
    {
      etag: (result.headers?.etag as string) ?? '',
    },
  );
}

const tableIdentifier = z.object({ namespace: z.array(z.string()), name: z.string() }).passthrough();
const renameRequest = z.object({ source: tableIdentifier, destination: tableIdentifier }).passthrough();

/**
 * Renames a table; its objects stay where they are (lib/engine/table-rename.ts). The
 * destination's namespace must exist (404 otherwise, as the spec says).
 */
export async function renameIcebergTableRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  const req = parse(renameRequest, body(event));
  const fromNs = namespaceFromParts(req.source.namespace);
  const from = NAME_PART.test(req.source.name) ? qualifiedName(fromNs, req.source.name) : undefined;
  if (!from || !(await s.catalog.getTable(from))) {
    await existingNamespace(s, fromNs);
    throw notFoundTable(`${fromNs}.${req.source.name}`);
  }
  const toNs = namespaceFromParts(req.destination.namespace);
  if (!NAME_PART.test(req.destination.name))
    throw bad(
      `destination: invalid table name ${JSON.stringify(req.destination.name)}: use 1-128 letters, digits and underscores, not starting with a digit`,
    );
  const renamed = await renameTable(
    s.catalog,
    (f, t) => s.writer.renameTable(f, t),
    from,
    qualifiedName(toNs, req.destination.name),
    { existingNamespace: true },
  );
  s.tables.invalidate(from);
  s.tables.invalidate(renamed.name);
  return noContent();
}

/** Clients report scan and commit metrics here; we accept them and keep nothing. */
export async function icebergMetricsRoute(event: HttpEvent, s: Services): Promise<HttpResult> {
  await existingTable(s, event);
  return noContent();
}
