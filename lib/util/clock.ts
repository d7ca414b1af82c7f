/**
 * Time as the engine sees it: the current time and timers, injected so that tests can run the
 * engine on virtual time (`VirtualClock`): a seeded simulation then replays the same
 * interleaving, and scheduling decisions can be tested without waiting.
 *
 * `systemClock` is the real one (Date.now and Node timers, unref'd so they never hold the
 * process open).
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once after `ms`. */
  after(ms: number, fn: () => void): Timer;
  /** Runs `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): Timer;
  /** Resolves after `ms` (a back-off). */
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

interface VirtualTimer {
  at: number;
  seq: number;
  fn: () => void;
  period: number;
  cancelled: boolean;
}

/**
 * Virtual time. Timers fire only when time is moved: `advance(ms)` moves it by `ms`, firing
 * what falls due in order (ties in the order they were set); `runNext()` jumps to the next timer.
 *
 * With `autoAdvance`, the clock moves itself: whenever the process has had `idleTurns` turns
 * (setImmediate) in a row, it jumps to the next timer. Work that is all in-process (promises,
 * setImmediate, an in-memory store, inline Parquet jobs) then runs in the same order on every
 * run, however fast the machine is, while back-offs and intervals cost no real time.
 */
export class VirtualClock implements Clock {
  private time: number;
  private seq = 0;
  private timers: VirtualTimer[] = [];
  private driving = false;
  private stopped = false;

  constructor(
    start = 0,
    private readonly o: { autoAdvance?: boolean; idleTurns?: number } = {},
  ) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): Timer {
    return this.add(ms, fn, 0);
  }

  every(ms: number, fn: () => void): Timer {
    return this.add(ms, fn, Math.max(1, ms));
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /** Timers set and not yet fired or cancelled. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const next = this.peek();
      if (!next || next.at > until) break;
      this.fire(next);
    }
    this.time = until;
  }

  /** Jumps to the next timer and fires it; false when there is none. */
  runNext(): boolean {
    const next = this.peek();
    if (!next) return false;
    this.fire(next);
    return true;
  }

  /** Stops moving by itself (timers stay; `advance` still works). */
  stop(): void {
    this.stopped = true;
  }

  private add(ms: number, fn: () => void, period: number): Timer {
    const t: VirtualTimer = {
      at: this.time + Math.max(0, ms),
      seq: this.seq++,
      fn,
      period,
      cancelled: false,
    };
    this.timers.push(t);
    this.drive();
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  private peek(): VirtualTimer | undefined {
    this.timers = this.timers.filter((t) => !t.cancelled);
    let best: VirtualTimer | undefined;
    for (const t of this.timers)
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    return best;
  }

  private fire(t: VirtualTimer): void {
    this.time = Math.max(this.time, t.at);
    if (t.period > 0) {
      t.at += t.period;
      t.seq = this.seq++;
    } else t.cancelled = true;
    t.fn();
  }

  /** Auto-advance: counts quiet turns of the real event loop, then fires the next timer. */
  private drive(): void {
    if (!this.o.autoAdvance || this.driving || this.stopped) return;
    this.driving = true;
    const idleTurns = this.o.idleTurns ?? 4;
    let quiet = 0;
    let seen = this.seq;
    const turn = (): void => {
      if (this.stopped) {
        this.driving = false;
        return;
      }
      // A timer set during the last turn means work is still going on: wait for quiet again.
      if (this.seq !== seen) {
        seen = this.seq;
        quiet = 0;
      } else quiet++;
      if (quiet >= idleTurns) {
        quiet = 0;
        if (!this.runNext()) {
          this.driving = false;
          return;
        }
        seen = this.seq;
      }
      setImmediate(turn);
    };
    setImmediate(turn);
  }
}
