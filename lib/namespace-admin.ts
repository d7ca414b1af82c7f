/**
 * Namespaces, shared by the public API and the Iceberg REST catalog. `default` always exists
 * (every table without a dot is in it); others are created explicitly (REST catalog) or on
 * demand by creating a table `ns.name`. A namespace may not share its name with a table of the
 * default namespace, because its tables' objects live under `tables/<ns>/` (lib/store/object-keys.ts).
 * Two creates racing for the same name (a namespace and a default table) are not caught on
 * DynamoDB, which has no transactions here; each create checks the other kind first.
 */
import type { Catalog, NamespaceEntry } from './catalog/catalog.ts';
import { NamespaceExistsError } from './catalog/catalog.ts';
import { DEFAULT_NAMESPACE, namespaceOf, validateNamespace } from './schema/table-name.ts';

export class NoSuchNamespaceError extends Error {
  readonly code = 'namespace_not_found';
  constructor(readonly namespace: string) {
    super(`namespace "${namespace}" does not exist`);
  }
}

export class NamespaceNotEmptyError extends Error {
  readonly code = 'namespace_not_empty';
  constructor(
    readonly namespace: string,
    readonly tables: string[],
  ) {
    super(
      `namespace "${namespace}" is not empty: it holds ${tables.length} table(s) (${tables.slice(0, 5).join(', ')}${tables.length > 5 ? ', …' : ''}); drop them first`,
    );
  }
}

/** A namespace and a table of the default namespace would share `tables/<name>/`. */
export class NameTakenError extends Error {
  readonly code = 'name_taken';
}

export async function getNamespace(catalog: Catalog, name: string): Promise<NamespaceEntry | undefined> {
  const stored = await catalog.getNamespace(name);
  if (stored) return stored;
  return name === DEFAULT_NAMESPACE ? { name, properties: {}, createdAt: '' } : undefined;
}

/** Every namespace, `default` included, sorted by name. */
export async function listNamespaces(catalog: Catalog): Promise<NamespaceEntry[]> {
  const stored = await catalog.listNamespaces();
  if (!stored.some((n) => n.name === DEFAULT_NAMESPACE))
    stored.push({ name: DEFAULT_NAMESPACE, properties: {}, createdAt: '' });
  return stored.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export async function createNamespace(
  catalog: Catalog,
  name: string,
  properties: Record<string, string> = {},
): Promise<NamespaceEntry> {
  validateNamespace(name);
  if (name === DEFAULT_NAMESPACE) throw new NamespaceExistsError(name);
  if (await catalog.getTable(name))
    throw new NameTakenError(
      `namespace "${name}" cannot be created: a table of the default namespace has that name (their objects would share tables/${name}/)`,
    );
  const entry = { name, properties: { ...properties }, createdAt: new Date().toISOString() };
  await catalog.createNamespace(entry);
  return entry;
}

/** Creates the namespace of a table being created if it does not exist yet. */
export async function ensureNamespaceOf(catalog: Catalog, table: string): Promise<void> {
  const ns = namespaceOf(table);
  if (ns === DEFAULT_NAMESPACE) {
    if (await catalog.getNamespace(table))
      throw new NameTakenError(
        `table "${table}" cannot be created: a namespace has that name (their objects would share tables/${table}/)`,
      );
    return;
  }
  if (await catalog.getNamespace(ns)) return;
  try {
    await createNamespace(catalog, ns);
  } catch (e) {
    if (!(e instanceof NamespaceExistsError)) throw e;
  }
}

export async function tablesIn(catalog: Catalog, namespace: string): Promise<string[]> {
  return (await catalog.listTables()).map((d) => d.name).filter((n) => namespaceOf(n) === namespace);
}

export async function dropNamespace(catalog: Catalog, name: string): Promise<void> {
  if (!(await getNamespace(catalog, name))) throw new NoSuchNamespaceError(name);
  if (name === DEFAULT_NAMESPACE)
    throw new NameTakenError(
      'the default namespace holds every table without a namespace; it cannot be dropped',
    );
  const tables = await tablesIn(catalog, name);
  if (tables.length > 0) throw new NamespaceNotEmptyError(name, tables);
  await catalog.dropNamespace(name);
}

/** Sets and removes namespace properties; says which were updated, removed, and missing. */
export async function updateNamespaceProperties(
  catalog: Catalog,
  name: string,
  updates: Record<string, string>,
  removals: string[],
): Promise<{ updated: string[]; removed: string[]; missing: string[] }> {
  if (name === DEFAULT_NAMESPACE && !(await catalog.getNamespace(name))) {
    // The default namespace gets an entry the first time its properties change.
    await catalog
      .createNamespace({ name, properties: {}, createdAt: new Date().toISOString() })
      .catch((e) => {
        if (!(e instanceof NamespaceExistsError)) throw e;
      });
  }
  let removed: string[] = [];
  let missing: string[] = [];
  const r = await catalog.updateNamespace(name, (props) => {
    removed = removals.filter((k) => Object.hasOwn(props, k));
    missing = removals.filter((k) => !Object.hasOwn(props, k));
    for (const k of removals) delete props[k];
    return { ...props, ...updates };
  });
  if (!r) throw new NoSuchNamespaceError(name);
  return { updated: Object.keys(updates), removed, missing };
}
