/**
 * Progress of a load: a bar on a terminal (cli-progress: rows, MB, rows/s, ETA), a plain line
 * every two seconds otherwise (logs, CI), nothing but the summary when there is nothing to show.
 */
import cliProgress from 'cli-progress';

export class Progress {
  private readonly bar: cliProgress.SingleBar | undefined;
  private readonly started = Date.now();
  private lastLine = 0;
  private rows = 0;
  private bytes = 0;

  constructor(
    private readonly totalBytes: number,
    private readonly stream: NodeJS.WriteStream,
  ) {
    if (stream.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          stream,
          format: '{bar} {percentage}% | {rows} rows | {mb} of {totalMb} MB | {rate} rows/s | ETA {eta_formatted}',
          hideCursor: true,
          etaBuffer: 20,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(Math.max(1, totalBytes), 0, { rows: 0, mb: '0.0', totalMb: mb(totalBytes), rate: 0 });
    }
  }

  private rate(): number {
    return Math.round(this.rows / Math.max(0.001, (Date.now() - this.started) / 1000));
  }

  update(rows: number, bytes: number): void {
    this.rows = rows;
    this.bytes = bytes;
    if (this.bar) {
      this.bar.update(Math.min(bytes, Math.max(1, this.totalBytes)), { rows, mb: mb(bytes), totalMb: mb(this.totalBytes), rate: this.rate() });
      return;
    }
    if (Date.now() - this.lastLine >= 2000) {
      this.lastLine = Date.now();
      const pct = this.totalBytes ? Math.round((100 * bytes) / this.totalBytes) : 100;
      this.stream.write(`loaded ${rows} rows (${mb(bytes)} of ${mb(this.totalBytes)} MB, ${pct}%), ${this.rate()} rows/s\n`);
    }
  }

  /** A message between progress updates (a retry after the server said it was busy). */
  note(message: string): void {
    if (this.bar) this.bar.update(this.bytes, {});
    this.stream.write(`${this.bar ? '\n' : ''}${message}\n`);
  }

  stop(): void {
    this.bar?.stop();
  }
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
