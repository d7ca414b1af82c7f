export interface EncodeOptions {
  compression?: 'zstd' | 'snappy' | 'lz4' | 'none';
  rowGroupSize?: number;
  keyValue?: Record<string, string>;
}
export function encodeParquet(ipc: Uint8Array, options?: EncodeOptions): Uint8Array;
export function decodeParquet(parquet: Uint8Array, columns?: string[]): Uint8Array;
