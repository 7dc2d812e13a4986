/**
 * Bytes queued towards the guest: everything from SND.UNA on, unacknowledged
 * and not yet sent alike.
 *
 *      released                 offset 0 = SND.UNA                         length
 *   ───────────────────────────┬──────────────────────────────────────────────┐
 *   ▒▒▒ acknowledged, dropped ▒│ chunk │   chunk   │ chunk │      chunk       │ ◀── push()
 *   ───────────────────────────┴──────────────────────────────────────────────┘
 *                      release(n) ──▶        copyOut(offset, len) reads here
 *
 * Chunks are the relay's socket reads, taken without copying: ownership moves
 * to the buffer at push() (the relay must not reuse them). A byte is copied
 * at most once more, by the sink's copyOut() into the outgoing frame, once per
 * (re)transmission; not at all when viewOf() finds the segment in one run of
 * memory and the frame sends it from there. No per-byte work and no per-push allocation beyond the
 * array slot: release() drops whole chunks by moving a head index and
 * compacts the array only when the dead prefix dominates, and copyOut()
 * remembers where the previous call ended, so the sequential reads of a burst
 * cost O(1) chunk lookups each.
 *
 * The buffer itself is unbounded: the endpoint bounds it by reporting
 * `sendBufferSpace` and the relay pauses its socket (contract.ts).
 */
import type { PayloadView, SendBufferReader } from './contract.js';

export class SendBuffer implements SendBufferReader {
  private chunks: Uint8Array[] = [];
  /** Index of the first live chunk in `chunks`. */
  private head = 0;
  /** Bytes of chunks[head] already released. */
  private headSkip = 0;
  private total = 0;
  /** copyOut cursor: chunk index and the buffer offset at which that chunk's live bytes start. */
  private cursorIdx = 0;
  private cursorStart = 0;

  /** Unacknowledged plus unsent bytes. */
  get length(): number {
    return this.total;
  }

  /** Appends a chunk; the buffer owns it from now on. Empty chunks are ignored. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Drops the oldest `n` bytes (acknowledged by the guest). `n` ≤ length. */
  release(n: number): void {
    if (n <= 0) return;
    if (n > this.total) n = this.total;
    this.total -= n;
    const chunks = this.chunks;
    while (n > 0) {
      const live = chunks[this.head].length - this.headSkip;
      if (n < live) {
        this.headSkip += n;
        break;
      }
      n -= live;
      chunks[this.head] = EMPTY; // let the chunk be collected now
      this.head++;
      this.headSkip = 0;
    }
    if (this.head === chunks.length) {
      chunks.length = 0;
      this.head = 0;
    } else if (this.head >= 64 && this.head * 2 >= chunks.length) {
      chunks.splice(0, this.head);
      this.head = 0;
    }
    // Offsets are relative to the (new) head: restart the cursor there.
    this.cursorIdx = this.head;
    this.cursorStart = 0;
  }

  /** Drops everything (the connection is gone). */
  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.headSkip = 0;
    this.total = 0;
    this.cursorIdx = 0;
    this.cursorStart = 0;
  }

  /**
   * Moves the cursor to the chunk holding `offset` (< length): cursorIdx is
   * that chunk, cursorStart the buffer offset of its first live byte.
   */
  private seek(offset: number): void {
    const chunks = this.chunks;
    let idx = this.cursorIdx;
    let start = this.cursorStart;
    if (offset < start || idx < this.head) {
      idx = this.head;
      start = 0;
    }
    for (;;) {
      const live = chunks[idx].length - (idx === this.head ? this.headSkip : 0);
      if (offset < start + live) break;
      start += live;
      idx++;
    }
    this.cursorIdx = idx;
    this.cursorStart = start;
  }

  viewOf(offset: number, len: number, out: PayloadView): boolean {
    if (offset < 0 || len <= 0 || offset + len > this.total) return false;
    this.seek(offset);
    const chunks = this.chunks;
    let idx = this.cursorIdx;
    const first = chunks[idx];
    const ab = first.buffer;
    const startByte = first.byteOffset + (idx === this.head ? this.headSkip : 0) + (offset - this.cursorStart);
    const endByte = startByte + len;
    let runEnd = first.byteOffset + first.length;
    while (runEnd < endByte) {
      const next = chunks[++idx];
      if (next.buffer !== ab || next.byteOffset !== runEnd) return false;
      runEnd += next.length;
    }
    if (out.bytes.buffer !== ab) out.bytes = new Uint8Array(ab);
    out.off = startByte;
    return true;
  }

  /** Copies `len` bytes starting `offset` bytes after SND.UNA into `dst` at `dstOff`. */
  copyOut(offset: number, len: number, dst: Uint8Array, dstOff: number): void {
    if (offset < 0 || len < 0 || offset + len > this.total) {
      throw new RangeError(`SendBuffer.copyOut(${offset}, ${len}) outside ${this.total} bytes`);
    }
    if (len === 0) return;
    this.seek(offset);
    const chunks = this.chunks;
    let idx = this.cursorIdx;
    let start = this.cursorStart;
    while (len > 0) {
      const c = chunks[idx];
      const skip = idx === this.head ? this.headSkip : 0;
      const from = skip + (offset - start);
      const n = Math.min(len, c.length - from);
      if (n === c.length) dst.set(c, dstOff);
      else dst.set(c.subarray(from, from + n), dstOff);
      dstOff += n;
      offset += n;
      len -= n;
      if (from + n === c.length) {
        start += c.length - skip;
        idx++;
      }
    }
    this.cursorIdx = idx;
    this.cursorStart = start;
  }
}

const EMPTY = new Uint8Array(0);
