// Parquet encode/decode with parquet-wasm (synchronous, CPU-bound). Used inside the worker
// threads of worker-pool.ts, and directly where threads are not worth it (a Lambda serving one
// request at a time). Plain JavaScript so node, tsx, vitest and esbuild all load it as is.
import * as pw from 'parquet-wasm/node';

const COMPRESSION = {
  zstd: pw.Compression.ZSTD,
  snappy: pw.Compression.SNAPPY,
  lz4: pw.Compression.LZ4_RAW,
  none: pw.Compression.UNCOMPRESSED,
};

function writerProperties(options) {
  let builder = new pw.WriterPropertiesBuilder()
    .setCompression(COMPRESSION[options.compression] ?? pw.Compression.ZSTD)
    .setCreatedBy('moonlink-serverless')
    .setMaxRowGroupSize(options.rowGroupSize ?? 122880);
  if (options.dictionary === false) builder = builder.setDictionaryEnabled(false);
  // No min/max per page and column chunk (what an engine prunes row groups with).
  if (options.statistics === false) builder = builder.setStatisticsEnabled(pw.EnabledStatistics.None);
  for (const column of options.plainColumns ?? [])
    builder = builder.setColumnDictionaryEnabled(column, false);
  if (options.keyValue && Object.keys(options.keyValue).length > 0) {
    builder = builder.setKeyValueMetadata(new Map(Object.entries(options.keyValue)));
  }
  return builder.build();
}

/** Bytes of this thread's WebAssembly memory (it grows to the largest job and never shrinks). */
export function wasmBytes() {
  return pw.wasmMemory().buffer.byteLength;
}

/** Arrow IPC stream bytes → Parquet bytes. */
export function encodeParquet(ipc, options = {}) {
  return pw.writeParquet(pw.Table.fromIPCStream(ipc), writerProperties(options));
}

/**
 * Arrow IPC streams, pulled one at a time from `next` (undefined ends), → one Parquet file.
 * Row groups are written as they fill, so only one row group's rows are held in WebAssembly
 * memory at a time besides the file's bytes so far.
 */
export async function encodeParquetStream(next, options = {}) {
  const source = new ReadableStream({
    async pull(controller) {
      const ipc = await next();
      if (ipc === undefined) {
        controller.close();
        return;
      }
      const table = pw.Table.fromIPCStream(ipc);
      try {
        for (const batch of table.recordBatches()) controller.enqueue(batch);
      } finally {
        table.free();
      }
    },
  });
  const chunks = [];
  let length = 0;
  for await (const chunk of await pw.transformParquetStream(source, writerProperties(options))) {
    chunks.push(chunk);
    length += chunk.length;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Parquet bytes → Arrow IPC stream bytes, optionally only some columns. */
export function decodeParquet(parquet, columns) {
  return pw.readParquet(parquet, columns ? { columns } : undefined).intoIPCStream();
}

/**
 * What parquet-wasm reads a file through (`size`, `slice`, `arrayBuffer`, as a Blob has), over
 * bytes in memory. A Node Blob copies on the thread pool when read; this answers at once, so a
 * read takes the same turns however busy the machine is (the fault simulation replays).
 */
function bytesBlob(bytes, start = 0, end = bytes.length) {
  return {
    size: end - start,
    type: '',
    slice(from = 0, to = end - start) {
      const lo = start + Math.max(0, Math.min(from, end - start));
      const hi = start + Math.max(0, Math.min(to, end - start));
      return bytesBlob(bytes, lo, Math.max(lo, hi));
    },
    arrayBuffer() {
      return Promise.resolve(bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + end));
    },
  };
}

/**
 * A Parquet file opened for reading a row group at a time: only the footer and the row group's
 * own byte ranges are copied into WebAssembly memory, never the whole file per read.
 */
export async function openParquet(parquet) {
  const file = await pw.ParquetFile.fromFile(bytesBlob(parquet));
  const meta = file.metadata();
  const rowGroupRows = meta.rowGroups().map((g) => g.numRows());
  meta.free();
  return {
    rowGroupRows,
    async readRowGroup(rowGroup) {
      if (!(rowGroup >= 0 && rowGroup < rowGroupRows.length))
        throw new Error(`row group ${rowGroup} of ${rowGroupRows.length}`);
      const table = await file.read({ rowGroups: [rowGroup], batchSize: 1 << 30 });
      return table.intoIPCStream();
    },
    free() {
      file.free();
    },
  };
}
