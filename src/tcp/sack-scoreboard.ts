/**
 * What the guest has told us, with SACK blocks (RFC 2018), that it holds
 * above SND.UNA: the sender's scoreboard of RFC 6675 §3, reduced to what
 * usernet uses it for, finding the holes to retransmit during recovery.
 *
 *   sndUnaOff                                                     sndMaxOff
 *   ────┼────────┬░░░░░░░░┬──────┬░░░░░░░░░░░░░┬─────────────────────┼──
 *       │  hole  │ sacked │ hole │   sacked    │ not reported (yet)  │
 *
 * Positions are stream offsets of our data (bytes since the SYN, never
 * wrapping); the endpoint converts the blocks' sequence numbers after
 * checking that they lie inside (SND.UNA, SND.MAX] (RFC 2018 §4 lets a
 * receiver renege, so the scoreboard is advice: nothing is released on a
 * SACK, only on the cumulative ACK).
 *
 * At most MAX_RANGES ranges are kept (merged as they touch); past that the
 * highest range is dropped, which at worst makes us retransmit bytes the
 * guest already has.
 */

const MAX_RANGES = 16;

export class SackScoreboard {
  private lefts: number[] = [];
  private rights: number[] = [];

  get isEmpty(): boolean {
    return this.lefts.length === 0;
  }

  get rangeCount(): number {
    return this.lefts.length;
  }

  /** Right edge of the highest SACKed range, −Infinity if none. */
  get highest(): number {
    const n = this.rights.length;
    return n === 0 ? -Infinity : this.rights[n - 1];
  }

  /** Bytes SACKed in total. */
  get sackedBytes(): number {
    let n = 0;
    for (let i = 0; i < this.lefts.length; i++) n += this.rights[i] - this.lefts[i];
    return n;
  }

  /** Records [left, right) as held by the guest, merging with what touches it. */
  add(left: number, right: number): void {
    if (right <= left) return;
    const lefts = this.lefts;
    const rights = this.rights;
    let i = 0;
    while (i < lefts.length && rights[i] < left) i++;
    // Ranges i..j-1 touch or overlap [left, right): merge them.
    let j = i;
    while (j < lefts.length && lefts[j] <= right) {
      if (lefts[j] < left) left = lefts[j];
      if (rights[j] > right) right = rights[j];
      j++;
    }
    lefts.splice(i, j - i, left);
    rights.splice(i, j - i, right);
    if (lefts.length > MAX_RANGES) {
      lefts.pop();
      rights.pop();
    }
  }

  /** Forgets everything below `off` (the cumulative ACK reached it). */
  pruneBelow(off: number): void {
    const lefts = this.lefts;
    const rights = this.rights;
    let k = 0;
    while (k < lefts.length && rights[k] <= off) k++;
    if (k > 0) {
      lefts.splice(0, k);
      rights.splice(0, k);
    }
    if (lefts.length > 0 && lefts[0] < off) lefts[0] = off;
  }

  clear(): void {
    this.lefts.length = 0;
    this.rights.length = 0;
  }

  /** The first offset at or after `from` the guest has not SACKed. */
  nextUnsacked(from: number): number {
    for (let i = 0; i < this.lefts.length; i++) {
      if (this.lefts[i] > from) break;
      if (this.rights[i] > from) from = this.rights[i];
    }
    return from;
  }

  /** Left edge of the first SACKed range starting after `from`, Infinity if none. */
  nextSacked(from: number): number {
    for (let i = 0; i < this.lefts.length; i++) if (this.lefts[i] > from) return this.lefts[i];
    return Infinity;
  }
}
