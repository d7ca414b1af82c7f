export interface EncodeOptions {
  compression?: 'zstd' | 'snappy' | 'lz4' | 'none';
  rowGroupSize?: number;
  keyValue?: Record<string, string>;
  /** false: no dictionary encoding in any column (parquet-wasm's default is on). */
  dictionary?: boolean;
  /** Top-level columns written without a dictionary (their values are mostly distinct). */
  plainColumns?: string[];
}
export function encodeParquet(ipc: Uint8Array, options?: EncodeOptions): Uint8Array;
export function decodeParquet(parquet: Uint8Array, columns?: string[]): Uint8Array;
