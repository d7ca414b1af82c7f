/** A job a worker runs: `run` gets the whole message, `transfer` names the buffers of its result to hand back. */
export interface WorkerJob {
  run(message: Record<string, unknown>): Promise<Record<string, unknown>>;
  transfer(result: Record<string, unknown>): ArrayBuffer[];
}

export function serveParquetJobs(load: (name: string) => Promise<unknown>): void;
