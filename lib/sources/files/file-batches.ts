/**
 * Files → request bodies of at most `batchRows` rows, for the CLI's `load` (local files) and
 * imports (objects of a store): Parquet and Arrow IPC files become Arrow IPC stream bodies (a
 * Parquet file is read a row group at a time, or decoded by `decodeParquet` where it must not
 * run on the calling thread), NDJSON files NDJSON bodies, CSV files (with a header row) NDJSON
 * bodies typed by the table's columns.
 */
import { createReadStream, promises as fs } from 'node:fs';
import readline from 'node:readline';
import { Readable } from 'node:stream';
import * as arrow from 'apache-arrow';
import { parse } from 'csv-parse';

/**
 * parquet-wasm, loaded on the first Parquet file read here (the CLI's): loading it compiles 5 MB
 * of WebAssembly, which the writer — whose imports decode Parquet in a worker — would otherwise
 * pay at every start on its main thread.
 */
const parquetCodec = () => import('../../parquet/parquet-codec.mjs');

export type Format = 'csv' | 'ndjson' | 'parquet' | 'arrow';

export interface Batch {
  body: Uint8Array;
  contentType: string;
  /** Extra query string (`op=` for bare NDJSON rows). */
  query: string;
  rows: number;
  /** Bytes of the file read so far (for progress). */
  bytesRead: number;
}

/** A file to read: a local path, or any object with its size, bytes and a stream of them. */
export interface FileInput {
  name: string;
  size: number;
  bytes(): Promise<Uint8Array>;
  stream(): Readable;
}

export async function localFile(file: string): Promise<FileInput> {
  const size = (await fs.stat(file)).size;
  return {
    name: file,
    size,
    bytes: async () => new Uint8Array(await fs.readFile(file)),
    stream: () => createReadStream(file),
  };
}

/** A file held in memory (an object read from a store). */
export function bytesFile(name: string, bytes: Uint8Array): FileInput {
  return {
    name,
    size: bytes.length,
    bytes: async () => bytes,
    stream: () => Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]),
  };
}

export interface Column {
  name: string;
  type: string;
  nullable: boolean;
}

export function formatOf(file: string, given?: string): Format {
  if (given) {
    if (!['csv', 'ndjson', 'parquet', 'arrow'].includes(given)) throw new Error(`unknown --format ${given}`);
    return given as Format;
  }
  const ext = file.toLowerCase().split('.').pop();
  if (ext === 'csv') return 'csv';
  if (ext === 'ndjson' || ext === 'jsonl' || ext === 'json') return 'ndjson';
  if (ext === 'parquet' || ext === 'pq') return 'parquet';
  if (ext === 'arrow' || ext === 'arrows' || ext === 'ipc' || ext === 'feather') return 'arrow';
  throw new Error(`${file}: cannot tell the format from the name; give --format csv|ndjson|parquet|arrow`);
}

const enc = new TextEncoder();

function arrowBatches(table: arrow.Table, batchRows: number, bytesAt: (done: number) => number): Batch[] {
  const out: Batch[] = [];
  for (let start = 0; start < table.numRows; start += batchRows) {
    const slice = table.slice(start, Math.min(table.numRows, start + batchRows));
    out.push({
      body: arrow.tableToIPC(slice, 'stream'),
      contentType: 'application/vnd.apache.arrow.stream',
      query: '',
      rows: slice.numRows,
      bytesRead: bytesAt(start + slice.numRows),
    });
  }
  return out;
}

/** The Arrow schema of a Parquet or Arrow file (for `--create`). */
export async function arrowSchemaOf(file: string, format: Format): Promise<arrow.Schema> {
  const bytes = new Uint8Array(await fs.readFile(file));
  if (format === 'arrow') return arrow.tableFromIPC(bytes).schema;
  const pq = await (await parquetCodec()).openParquet(bytes);
  try {
    return arrow.tableFromIPC(await pq.readRowGroup(0)).schema;
  } finally {
    pq.free();
  }
}

export async function* fileBatches(
  file: string | FileInput,
  format: Format,
  o: {
    batchRows: number;
    op?: string;
    columns?: Column[];
    /** Parquet file → Arrow IPC stream, e.g. in a worker thread (default: here, a row group at a time). */
    decodeParquet?: (bytes: Uint8Array) => Promise<Uint8Array>;
  },
): AsyncGenerator<Batch> {
  const input = typeof file === 'string' ? await localFile(file) : file;
  const size = input.size;
  if (format === 'arrow') {
    const table = arrow.tableFromIPC(await input.bytes());
    yield* arrowBatches(table, o.batchRows, (done) => Math.round((size * done) / Math.max(1, table.numRows)));
    return;
  }
  if (format === 'parquet' && o.decodeParquet) {
    const table = arrow.tableFromIPC(await o.decodeParquet(await input.bytes()));
    yield* arrowBatches(table, o.batchRows, (done) => Math.round((size * done) / Math.max(1, table.numRows)));
    return;
  }
  if (format === 'parquet') {
    const pq = await (await parquetCodec()).openParquet(await input.bytes());
    try {
      const total = pq.rowGroupRows.reduce((a, b) => a + b, 0);
      let before = 0;
      for (let g = 0; g < pq.rowGroupRows.length; g++) {
        const table = arrow.tableFromIPC(await pq.readRowGroup(g));
        const base = before;
        yield* arrowBatches(table, o.batchRows, (done) =>
          Math.round((size * (base + done)) / Math.max(1, total)),
        );
        before += table.numRows;
      }
    } finally {
      pq.free();
    }
    return;
  }
  const stream = input.stream();
  let bytesRead = 0;
  stream.on('data', (c) => {
    bytesRead += c.length;
  });
  let lines: string[] = [];
  const flush = (): Batch => {
    const b: Batch = {
      body: enc.encode(lines.join('\n')),
      contentType: 'application/x-ndjson',
      query: bare ? `op=${o.op ?? 'insert'}` : '',
      rows: lines.length,
      bytesRead,
    };
    lines = [];
    return b;
  };
  let bare = true;
  if (format === 'ndjson') {
    let first = true;
    for await (const line of readline.createInterface({
      input: stream,
      crlfDelay: Number.POSITIVE_INFINITY,
    })) {
      if (line.trim() === '') continue;
      if (first) {
        // Lines that are operations ({"op", "row"}) go as they are; bare rows get ?op=.
        first = false;
        if (!o.op) {
          try {
            const v = JSON.parse(line) as Record<string, unknown>;
            bare = !(v && typeof v === 'object' && 'op' in v && 'row' in v);
          } catch {
            bare = true;
          }
        }
      }
      lines.push(line);
      if (lines.length >= o.batchRows) yield flush();
    }
    if (lines.length > 0) yield flush();
    return;
  }
  // CSV with a header: values typed by the table's columns, empty cells null.
  const columns = new Map((o.columns ?? []).map((c) => [c.name, c]));
  const parser = stream.pipe(parse({ columns: true, skip_empty_lines: true, bom: true }));
  let row = 0;
  for await (const record of parser as AsyncIterable<Record<string, string>>) {
    const parts: string[] = [];
    for (const [name, cell] of Object.entries(record)) {
      const c = columns.get(name);
      parts.push(`${JSON.stringify(name)}:${c ? csvValue(c, cell, row) : JSON.stringify(cell)}`);
    }
    lines.push(`{${parts.join(',')}}`);
    row++;
    if (lines.length >= o.batchRows) yield flush();
  }
  if (lines.length > 0) yield flush();
}

/** A CSV cell as the JSON value the column's type takes (numbers keep their digits). */
function csvValue(c: Column, cell: string, row: number): string {
  if (cell === '') return 'null';
  const t = c.type;
  const fail = (what: string): never => {
    throw new Error(`CSV row ${row + 1}, column "${c.name}": ${JSON.stringify(cell)} is not ${what}`);
  };
  if (t === 'int' || t === 'long') return /^-?\d+$/.test(cell.trim()) ? cell.trim() : fail('an integer');
  if (t === 'float' || t === 'double')
    return /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(cell.trim())
      ? cell.trim()
      : ['NaN', 'Infinity', '-Infinity'].includes(cell.trim())
        ? JSON.stringify(cell.trim())
        : fail('a number');
  if (t === 'boolean') {
    const v = cell.trim().toLowerCase();
    if (['true', 't', '1', 'yes'].includes(v)) return 'true';
    if (['false', 'f', '0', 'no'].includes(v)) return 'false';
    return fail('a boolean');
  }
  if (t.startsWith('list') || t.startsWith('map') || t.startsWith('struct')) {
    try {
      JSON.parse(cell);
    } catch {
      fail('JSON');
    }
    return cell;
  }
  return JSON.stringify(cell);
}

/** Iceberg column types for an Arrow schema (`--create` from Parquet or Arrow files). */
export function columnsFromArrow(schema: arrow.Schema): Column[] {
  return schema.fields
    .filter((f) => f.name !== '_op')
    .map((f) => ({ name: f.name, type: icebergTypeOf(f.type, f.name), nullable: f.nullable }));
}

function icebergTypeOf(t: arrow.DataType, name: string): string {
  if (arrow.DataType.isBool(t)) return 'boolean';
  if (arrow.DataType.isInt(t)) {
    const i = t as arrow.Int;
    return i.bitWidth < 32 || (i.bitWidth === 32 && i.isSigned) ? 'int' : 'long';
  }
  if (arrow.DataType.isFloat(t))
    return (t as arrow.Float).precision === arrow.Precision.DOUBLE ? 'double' : 'float';
  if (arrow.DataType.isDecimal(t))
    return `decimal(${(t as arrow.Decimal).precision},${(t as arrow.Decimal).scale})`;
  if (arrow.DataType.isDate(t)) return 'date';
  if (arrow.DataType.isTime(t)) return 'time';
  if (arrow.DataType.isTimestamp(t)) return (t as arrow.Timestamp).timezone ? 'timestamptz' : 'timestamp';
  if (arrow.DataType.isUtf8(t) || arrow.DataType.isLargeUtf8(t)) return 'string';
  if (arrow.DataType.isDictionary(t)) return icebergTypeOf((t as arrow.Dictionary).dictionary, name);
  if (arrow.DataType.isBinary(t) || arrow.DataType.isLargeBinary(t)) return 'binary';
  if (arrow.DataType.isFixedSizeBinary(t)) return `fixed[${(t as arrow.FixedSizeBinary).byteWidth}]`;
  if (arrow.DataType.isList(t)) return `list<${icebergTypeOf((t as arrow.List).children[0].type, name)}>`;
  if (arrow.DataType.isStruct(t))
    return `struct<${(t as arrow.Struct).children.map((c) => `${c.name}:${icebergTypeOf(c.type, name)}`).join(',')}>`;
  if (arrow.DataType.isMap(t)) {
    const entries = (t as arrow.Map_).children[0].type as arrow.Struct;
    return `map<${icebergTypeOf(entries.children[0].type, name)},${icebergTypeOf(entries.children[1].type, name)}>`;
  }
  throw new Error(`column "${name}": no Iceberg type for Arrow ${String(t)}`);
}

/** `--schema "id:long,name:string?"` (a trailing `?` marks a nullable column). */
export function parseSchemaOption(text: string): Column[] {
  return text.split(/,(?![^<]*>)/).map((part) => {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+?)\s*$/.exec(part);
    if (!m) throw new Error(`--schema: "${part}" is not name:type`);
    const nullable = m[2].endsWith('?');
    return { name: m[1], type: nullable ? m[2].slice(0, -1) : m[2], nullable };
  });
}
