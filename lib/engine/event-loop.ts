/**
 * One ordered event loop per table. Events are handled one at a time, synchronously, in the
 * order they were posted; slow work is started by a handler and comes back later as another
 * event. Transaction events can be held back (`pauseData`) while a commit waits for async work,
 * without holding back the completion events that work produces.
 */

/** Milliseconds of events one turn handles before the process's other callbacks get theirs. */
const SLICE_MS = 5;

export interface LoopEvent {
  type: string;
}

/** FIFO with O(1) push and shift. */
class Queue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(v: T): void {
    this.items.push(v);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

export class EventLoop<E extends LoopEvent> {
  private readonly data = new Queue<E>();
  private readonly control = new Queue<E>();
  private draining = false;
  private scheduled = false;
  private paused = 0;
  private stopped = false;

  constructor(
    private readonly handle: (e: E) => void,
    private readonly isData: (e: E) => boolean,
    private readonly onError: (e: unknown, event: E) => void,
    /** Called for each event that will never be handled (queued at stop, or posted after it). */
    private readonly onDrop: (e: E) => void = () => undefined,
    /** Milliseconds for bounding a turn (a virtual clock's in simulations). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  post(e: E): void {
    if (this.stopped) {
      this.onDrop(e);
      return;
    }
    (this.isData(e) ? this.data : this.control).push(e);
    this.schedule();
  }

  /** Holds data events until {@link resumeData}. Nests. */
  pauseData(): void {
    this.paused++;
  }

  resumeData(): void {
    this.paused--;
    this.schedule();
  }

  get pendingData(): number {
    return this.data.length;
  }

  stop(): void {
    this.stopped = true;
    for (const q of [this.control, this.data]) {
      for (let e = q.shift(); e; e = q.shift()) this.onDrop(e);
      q.clear();
    }
  }

  private schedule(): void {
    if (this.scheduled || this.draining) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    this.draining = true;
    try {
      // Bounded, in events and in time, so I/O callbacks (requests, other tables) get a turn:
      // under a backlog of transactions one turn would otherwise apply them all at once.
      const until = this.now() + SLICE_MS;
      for (let n = 0; n < 10_000 && !this.stopped && (n === 0 || this.now() < until); n++) {
        const e =
          this.control.length > 0 ? this.control.shift() : this.paused === 0 ? this.data.shift() : undefined;
        if (!e) break;
        try {
          this.handle(e);
        } catch (err) {
          this.onError(err, e);
        }
      }
    } finally {
      this.draining = false;
    }
    if (!this.stopped && (this.control.length > 0 || (this.paused === 0 && this.data.length > 0)))
      this.schedule();
  }
}
