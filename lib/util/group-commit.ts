/**
 * Group commit: many callers ask for their change to be durable; one flush serves all of them.
 * `sync()` resolves after a flush that started after the call, so every change made before
 * calling it is covered.
 */
export class GroupCommit {
  private flushing = false;
  private waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(private readonly flush: () => Promise<void>) {}

  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.flushing) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.flushing = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await this.flush();
        for (const w of batch) w.resolve();
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
    this.flushing = false;
  }
}
