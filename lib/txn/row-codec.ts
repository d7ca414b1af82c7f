/** How a table's rows are decoded: per column its decoder, and where the primary key's columns are. */
import type { TableSchema } from '../schema/table-schema.ts';
import { type Decoder, fieldDecoder } from '../schema/values.ts';

export interface RowCodec {
  readonly schema: TableSchema;
  readonly columnIndex: Map<string, number>;
  readonly decoders: Decoder[];
  readonly keyColumns: number[];
}

const codecs = new WeakMap<TableSchema, RowCodec>();

export function rowCodec(schema: TableSchema): RowCodec {
  let c = codecs.get(schema);
  if (!c) {
    const columnIndex = new Map(schema.fields.map((f, i) => [f.name, i]));
    c = {
      schema,
      columnIndex,
      decoders: schema.fields.map(fieldDecoder),
      keyColumns: schema.primaryKey.map((k) => columnIndex.get(k)!),
    };
    codecs.set(schema, c);
  }
  return c;
}
