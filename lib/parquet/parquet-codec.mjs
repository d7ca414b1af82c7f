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

/** Arrow IPC stream bytes → Parquet bytes. */
export function encodeParquet(ipc, options = {}) {
  let builder = new pw.WriterPropertiesBuilder()
    .setCompression(COMPRESSION[options.compression] ?? pw.Compression.ZSTD)
    .setCreatedBy('moonlink-serverless')
    .setMaxRowGroupSize(options.rowGroupSize ?? 122880);
  if (options.dictionary === false) builder = builder.setDictionaryEnabled(false);
  for (const column of options.plainColumns ?? [])
    builder = builder.setColumnDictionaryEnabled(column, false);
  if (options.keyValue && Object.keys(options.keyValue).length > 0) {
    builder = builder.setKeyValueMetadata(new Map(Object.entries(options.keyValue)));
  }
  return pw.writeParquet(pw.Table.fromIPCStream(ipc), builder.build());
}

/** Parquet bytes → Arrow IPC stream bytes, optionally only some columns. */
export function decodeParquet(parquet, columns) {
  return pw.readParquet(parquet, columns ? { columns } : undefined).intoIPCStream();
}
