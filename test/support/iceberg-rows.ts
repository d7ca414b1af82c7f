/** Reads the live rows of an Iceberg table's current snapshot with our own reader (tests). */

import { readData, tableFromIpc } from '../../lib/columns/arrow-convert.ts';
import type { IcebergTable } from '../../lib/iceberg/iceberg-table.ts';
import type { ParquetWorkerPool } from '../../lib/parquet/worker-pool.ts';
import type { TableSchema } from '../../lib/schema/table-schema.ts';
import type { Value } from '../../lib/schema/values.ts';
import type { ObjectStore } from '../../lib/store/object-store.ts';

export async function readIcebergRows(
  iceberg: IcebergTable,
  store: ObjectStore,
  pool: ParquetWorkerPool,
  schema: TableSchema,
): Promise<Value[][]> {
  const state = await iceberg.currentState();
  const rows: Value[][] = [];
  for (const f of state.dataFiles) {
    const table = tableFromIpc(await pool.decode(await store.get(f.key)));
    const deleted = state.deletes.get(f.key);
    let pos = 0;
    for (const batch of table.batches) {
      if (batch.data.children.length !== schema.fields.length) {
        throw new Error(
          `${f.key}: ${batch.data.children.length} columns (${table.schema.fields.map((x) => x.name)}), expected ${schema.fields.length}`,
        );
      }
      const cols = schema.fields.map((field, c) => {
        try {
          return readData(field.type, batch.data.children[c]);
        } catch (e) {
          throw new Error(
            `${f.key} column ${field.name}: ${String(batch.data.children[c]?.type)} children=${batch.data.children[c]?.children?.length} rows=${batch.numRows}: ${(e as Error).message}`,
          );
        }
      });
      for (let i = 0; i < batch.numRows; i++, pos++) {
        if (deleted?.has(pos)) continue;
        rows.push(cols.map((col) => col[i]));
      }
    }
  }
  return rows;
}
