/**
 * Deadlines of many owners (TCP flows, UDP mappings) behind the stack's one
 * timer. A binary min-heap of (deadline, owner) with lazy deletion: an owner
 * records its current deadline, and a popped entry whose deadline no longer
 * matches is stale and skipped. Rescheduling is O(log n) and never searches.
 * Stale entries are bounded: when they outnumber live ones 3 to 1 the heap is
 * rebuilt from the live owners.
 */
export interface TimerOwner {
  /** The deadline this owner is currently scheduled for (Infinity: none). Managed by the queue. */
  timerDeadline: number;
  onTimer(nowMs: number): void;
}

export class TimerQueue<T extends TimerOwner> {
  private deadlines: number[] = [];
  private owners: T[] = [];
  private live = 0;

  get size(): number {
    return this.live;
  }

  /** Schedules `owner` at `deadline` (Infinity cancels), replacing its earlier deadline. */
  schedule(owner: T, deadline: number): void {
    if (owner.timerDeadline === deadline) return;
    if (owner.timerDeadline !== Infinity) this.live--;
    owner.timerDeadline = deadline;
    if (deadline === Infinity) return;
    this.live++;
    this.push(deadline, owner);
    if (this.deadlines.length > 64 && this.deadlines.length > 4 * this.live) this.rebuild();
  }

  /** The earliest live deadline, or Infinity. */
  peek(): number {
    this.dropStale();
    return this.deadlines.length === 0 ? Infinity : this.deadlines[0];
  }

  /** Calls onTimer on every owner whose deadline is ≤ now (each owner reschedules itself). */
  run(nowMs: number): void {
    for (;;) {
      this.dropStale();
      if (this.deadlines.length === 0 || this.deadlines[0] > nowMs) return;
      const owner = this.owners[0];
      this.pop();
      owner.timerDeadline = Infinity;
      this.live--;
      owner.onTimer(nowMs);
    }
  }

  private dropStale(): void {
    while (this.deadlines.length > 0 && this.owners[0].timerDeadline !== this.deadlines[0]) this.pop();
  }

  private rebuild(): void {
    const seen = new Set<T>();
    const d: number[] = [];
    const o: T[] = [];
    for (let i = 0; i < this.owners.length; i++) {
      const owner = this.owners[i];
      if (owner.timerDeadline === this.deadlines[i] && !seen.has(owner)) {
        seen.add(owner);
        d.push(this.deadlines[i]);
        o.push(owner);
      }
    }
    this.deadlines = [];
    this.owners = [];
    for (let i = 0; i < d.length; i++) this.push(d[i], o[i]);
  }

  private push(deadline: number, owner: T): void {
    const d = this.deadlines;
    const o = this.owners;
    let i = d.length;
    d.push(deadline);
    o.push(owner);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (d[parent] <= deadline) break;
      d[i] = d[parent];
      o[i] = o[parent];
      i = parent;
    }
    d[i] = deadline;
    o[i] = owner;
  }

  private pop(): void {
    const d = this.deadlines;
    const o = this.owners;
    const lastD = d.pop()!;
    const lastO = o.pop()!;
    const n = d.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && d[r] < d[l] ? r : l;
      if (d[c] >= lastD) break;
      d[i] = d[c];
      o[i] = o[c];
      i = c;
    }
    d[i] = lastD;
    o[i] = lastO;
  }
}
