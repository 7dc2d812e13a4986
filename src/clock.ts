/**
 * Time for the stack. The protocol code never reads a clock or arms a timer:
 * it is given `now` and reports its next deadline. The stack owns exactly one
 * timer through this interface; tests pass a ManualClock and advance it.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  /** Arms the single timer to fire at `atMs` (replacing any earlier arming). */
  arm(atMs: number, callback: () => void): void;
  disarm(): void;
}

export class SystemClock implements Clock {
  private timer: NodeJS.Timeout | null = null;

  now(): number {
    return performance.now();
  }

  arm(atMs: number, callback: () => void): void {
    this.disarm();
    this.timer = setTimeout(callback, Math.max(0, atMs - this.now()));
    // The stack's timer alone must not keep a process alive; the link does.
    this.timer.unref();
  }

  disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

export class ManualClock implements Clock {
  private current: number;
  private deadline = Infinity;
  private callback: (() => void) | null = null;

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  arm(atMs: number, callback: () => void): void {
    this.deadline = atMs;
    this.callback = callback;
  }

  disarm(): void {
    this.deadline = Infinity;
    this.callback = null;
  }

  get armed(): boolean {
    return this.callback !== null;
  }

  /** Moves time forward, firing the timer each time its deadline is reached. */
  advance(ms: number): void {
    const target = this.current + ms;
    while (this.callback !== null && this.deadline <= target) {
      this.current = Math.max(this.current, this.deadline);
      const cb = this.callback;
      this.disarm();
      cb();
    }
    this.current = target;
  }
}
