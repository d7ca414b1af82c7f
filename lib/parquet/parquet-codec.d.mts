export interface EncodeOptions {
  compression?: 'zstd' | 'snappy' | 'lz4' | 'none';
  rowGroupSize?: number;
  keyValue?: Record<string, string>;
  /** false: no dictionary encoding in any column (parquet-wasm's default is on). */
  dictionary?: boolean;
  /** false: no Parquet statistics (min/max per page and column chunk). */
  statistics?: boolean;
  /** Top-level columns written without a dictionary (their values are mostly distinct). */
  plainColumns?: string[];
}
/** Bytes of this thread's WebAssembly memory (grows to the largest job, never shrinks). */
export function wasmBytes(): number;
export function encodeParquet(ipc: Uint8Array, options?: EncodeOptions): Uint8Array;
export function decodeParquet(parquet: Uint8Array, columns?: string[]): Uint8Array;
/** IPC streams pulled from `next` until it gives undefined → one Parquet file, a row group at a time. */
export function encodeParquetStream(
  next: () => Uint8Array | undefined | Promise<Uint8Array | undefined>,
  options?: EncodeOptions,
): Promise<Uint8Array>;
export interface OpenParquet {
  /** Rows in each row group, from the footer. */
  rowGroupRows: number[];
  /** One row group (0-based) → Arrow IPC stream bytes. */
  readRowGroup(rowGroup: number): Promise<Uint8Array>;
  free(): void;
}
/** A Parquet file read a row group at a time (only the byte ranges read reach WebAssembly memory). */
export function openParquet(parquet: Uint8Array): Promise<OpenParquet>;
