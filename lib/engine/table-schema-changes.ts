/**
 * Schema and partition changes asked for through the API (`POST /tables/{name}/schema`, and the
 * columns a write's new fields add): checked against the newest schema, logged, applied and
 * stored in the catalog (schema-evolution.ts, partition-evolution.ts), one at a time per table.
 */

import { NoSuchTableError } from '../catalog/catalog.ts';
import type { SchemaChange } from '../schema/schema-change.ts';
import type { TableDefinition } from '../schema/table-schema.ts';
import { changeOwnedLayout, type PartitioningResult, partitioningChangeOf } from './partition-evolution.ts';
import {
  changeOwnedSchema,
  evolvedDefinition,
  parseSchemaChanges,
  type SchemaChangeContext,
  type SchemaChangeResult,
} from './schema-evolution.ts';
import type { TableHandler } from './table-handler.ts';

export class TableSchemaChanges {
  constructor(
    private readonly deps: {
      context: SchemaChangeContext;
      open: (name: string) => Promise<TableHandler>;
      writeRefusal: (name: string) => Error | undefined;
    },
  ) {}

  private readonly running = new Map<string, Promise<unknown>>();

  /**
   * Changes a table's schema (`POST /tables/{name}/schema`): checked against the newest schema,
   * logged, applied, stored in the catalog. One change at a time per table.
   */
  async change(name: string, body: unknown): Promise<SchemaChangeResult | PartitioningResult> {
    const layout = partitioningChangeOf(body);
    if (layout) {
      return this.serialized(name, async () => {
        const { handler, def } = await this.writable(name);
        return changeOwnedLayout(this.deps.context, def, handler, layout);
      });
    }
    const changes = parseSchemaChanges(body);
    return this.serialized(name, async () => {
      const { handler, def } = await this.writable(name);
      return changeOwnedSchema(this.deps.context, def, handler, changes);
    });
  }

  /** The open table and its current definition, when it takes writes now (else throws why not). */
  private async writable(name: string): Promise<{ handler: TableHandler; def: TableDefinition }> {
    const handler = await this.deps.open(name);
    const def = await this.deps.context.catalog.getTable(name);
    if (!def) throw new NoSuchTableError(name);
    const refusal = this.deps.writeRefusal(name);
    if (refusal) throw refusal;
    return { handler, def };
  }

  /**
   * Adds the columns a write's new fields need (tables created with `"schemaEvolution":
   * "add-columns"`), before the write is checked and logged: the add-column changes whose
   * column another write has not added meanwhile, as one change. Resolves with the definition
   * to check the write against; undefined when the table does not add columns.
   */
  async addColumns(name: string, changes: SchemaChange[]): Promise<TableDefinition | undefined> {
    const run = async (): Promise<TableDefinition | undefined> => {
      const handler = await this.deps.open(name);
      const def = await this.deps.context.catalog.getTable(name);
      if (def?.schemaEvolution !== 'add-columns') return undefined;
      const have = new Set(handler.latestSchema.fields.map((f) => f.name));
      const missing = changes.filter((c) => c.action === 'add-column' && !have.has(c.name));
      if (missing.length > 0) await changeOwnedSchema(this.deps.context, def, handler, missing);
      return evolvedDefinition(def, {
        schema: handler.latestSchema,
        lastColumnId: handler.latestLastColumnId,
      });
    };
    return this.serialized(name, run);
  }

  /** Runs schema changes of one table one at a time. */
  private serialized<T>(name: string, run: () => Promise<T>): Promise<T> {
    const before = this.running.get(name) ?? Promise.resolve();
    const mine = before.then(run, run);
    const tail = mine.catch(() => undefined);
    this.running.set(name, tail);
    void tail.then(() => {
      if (this.running.get(name) === tail) this.running.delete(name);
    });
    return mine;
  }
}
