/**
 * Out-of-order guest data, held until the gap before it fills (RFC 9293
 * §3.10.7.4, seventh step: "segments with higher beginning sequence numbers
 * may be held for later processing"), and the SACK blocks that describe it
 * (RFC 2018 §4).
 *
 * Positions are stream offsets, not sequence numbers: the count of guest data
 * bytes since the SYN, a plain JS number that never wraps (2^53 bytes), so the
 * bookkeeping here needs no modular arithmetic. The endpoint converts at the
 * edge (offset = rcvNxtOff + (seq − RCV.NXT)).
 *
 *        rcvNxtOff                        right edge of the advertised window
 *   ─────────┼──────────────────────────────────────────────┼──────
 *            │ hole │ blk │ hole │  blk  │blk│     hole     │
 *                     ▲ sorted, never overlapping, adjacent blocks allowed
 *
 * Each stored block is a copy (the segment's bytes live in the link's batch
 * buffer). A new segment keeps only the bytes no block holds yet, so
 * overlapping and duplicated retransmissions cost nothing more. Memory is
 * bounded twice: by the window (the endpoint trims segments to it before
 * they get here) and by `maxBlocks`, which stops a guest from fragmenting a
 * MB window into a million one-byte blocks; past it new segments are dropped
 * (the guest retransmits them), never stored data.
 */

export class Reassembly {
  private starts: number[] = [];
  private ends: number[] = [];
  private datas: Uint8Array[] = [];
  /** Bytes held. */
  bytes = 0;
  /** Stream offset of a FIN that arrived out of order (its sequence number), −1 if none. */
  finOffset = -1;
  /** Start offsets of the most recently stored segments, newest first (RFC 2018 §4 block order). */
  private recent: number[] = [];

  constructor(private readonly maxBlocks: number) {}

  get blockCount(): number {
    return this.starts.length;
  }

  get isEmpty(): boolean {
    return this.starts.length === 0;
  }

  /** Start offset of the first block, Infinity if none. */
  get firstStart(): number {
    return this.starts.length === 0 ? Infinity : this.starts[0];
  }

  /** End offset (exclusive) of the last block, −Infinity if none. */
  get lastEnd(): number {
    const n = this.ends.length;
    return n === 0 ? -Infinity : this.ends[n - 1];
  }

  /**
   * Stores the parts of [start, start + len) not held yet, copying them from
   * `buf` at `off`. Returns the bytes newly stored; 0 for a pure duplicate or
   * when the block limit is reached.
   */
  insert(start: number, buf: Uint8Array, off: number, len: number): number {
    if (len <= 0) return 0;
    const end = start + len;
    const starts = this.starts;
    const ends = this.ends;
    let i = this.indexAfter(start);
    let cur = start;
    let stored = 0;
    while (cur < end) {
      if (i < starts.length && starts[i] <= cur) {
        if (ends[i] > cur) cur = ends[i];
        i++;
        continue;
      }
      const gapEnd = i < starts.length && starts[i] < end ? starts[i] : end;
      if (starts.length >= this.maxBlocks) break;
      const from = off + (cur - start);
      starts.splice(i, 0, cur);
      ends.splice(i, 0, gapEnd);
      this.datas.splice(i, 0, buf.slice(from, from + (gapEnd - cur)));
      stored += gapEnd - cur;
      i++;
      cur = gapEnd;
    }
    this.bytes += stored;
    if (stored > 0) this.noteRecent(start);
    return stored;
  }

  /** Data of the first block; call only when not empty. */
  get firstData(): Uint8Array {
    return this.datas[0];
  }

  /** Forgets the first block. */
  dropFirst(): void {
    this.bytes -= this.datas[0].length;
    this.starts.shift();
    this.ends.shift();
    this.datas.shift();
  }

  /** Forgets everything (the connection is closing or reset). */
  clear(): void {
    this.starts.length = 0;
    this.ends.length = 0;
    this.datas.length = 0;
    this.recent.length = 0;
    this.bytes = 0;
    this.finOffset = -1;
  }

  /**
   * Writes up to `max` SACK blocks as stream-offset pairs [left, right) into
   * `out` (RFC 2018 §4): first the contiguous range holding the most recently
   * received segment, then the ranges of the next most recent ones, each
   * range once. Blocks below `rcvNxtOff` are never reported. Returns the count.
   */
  sackRanges(out: Float64Array, max: number, rcvNxtOff: number): number {
    let n = 0;
    const recent = this.recent;
    for (let r = 0; r < recent.length && n < max; r++) {
      const at = recent[r];
      if (at < rcvNxtOff) continue;
      const i = this.indexAfter(at);
      if (i >= this.starts.length || this.starts[i] > at) continue;
      // Grow over adjacent blocks to the whole contiguous range.
      let lo = i;
      while (lo > 0 && this.ends[lo - 1] === this.starts[lo]) lo--;
      let hi = i;
      while (hi + 1 < this.starts.length && this.ends[hi] === this.starts[hi + 1]) hi++;
      const left = this.starts[lo];
      let dup = false;
      for (let k = 0; k < n; k++) if (out[2 * k] === left) dup = true;
      if (dup) continue;
      out[2 * n] = left;
      out[2 * n + 1] = this.ends[hi];
      n++;
    }
    return n;
  }

  /** Index of the first block whose end is after `offset`. */
  private indexAfter(offset: number): number {
    const ends = this.ends;
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid] <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private noteRecent(start: number): void {
    const recent = this.recent;
    const at = recent.indexOf(start);
    if (at >= 0) recent.splice(at, 1);
    recent.unshift(start);
    if (recent.length > 4) recent.length = 4;
  }
}
