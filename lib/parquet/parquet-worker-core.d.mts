export function serveParquetJobs(loaders: {
  columnEncoder: Promise<unknown>;
  compactionJob: () => Promise<unknown>;
}): void;
