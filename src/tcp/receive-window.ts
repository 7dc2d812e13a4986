/**
 * The window we advertise to the guest: how backpressure from a slow host
 * socket reaches the guest's sender.
 *
 *                 rcvNxtOff                   edgeOff
 *   ── delivered ──────┼──────── RCV.WND ────────┼───────────────
 *   │◀── backlog ────▶│ (the guest may send this) │
 *   │◀────────────────── rcvBufBytes ───────────────────▶│
 *
 * Offsets count guest data bytes since the SYN (as in reassembly.ts).
 * `backlog` is what the relay has been handed through onData and the host
 * socket has not taken yet. Every delivered byte counts as backlog at once,
 * until the relay reports the real figure (socket.writableLength) through
 * setReceiveBacklog; so a relay that reports late errs towards a smaller
 * window, never a larger one.
 *
 * The free space is rcvBufBytes − backlog. Out-of-order bytes are NOT
 * subtracted again: they lie inside [rcvNxtOff, edgeOff), space the window
 * already granted, and once delivered they become backlog. Subtracting them
 * too would count them twice and stall a recovering sender.
 *
 * Two rules shape what is advertised:
 *  - never retract the right edge (RFC 9293 §3.8.6.2.1 SHOULD NOT shrink,
 *    RFC 7323 §2.4): the guest may already have sent up to it. As data
 *    arrives, rcvNxtOff moves towards the fixed edge and the window closes by
 *    itself; the edge moves right only when space frees.
 *  - receiver-side silly window syndrome avoidance (RFC 9293 §3.8.6.2.2):
 *    move the edge only when it can move by min(rcvBufBytes/2, MSS).
 *
 * With a window-scale shift the 16-bit field loses the low bits; when the
 * rounded-down value would retract the edge it is rounded up instead, as
 * Linux tcp_select_window() does, so the edge may overshoot the buffer by
 * less than 2^shift bytes.
 */

export class ReceiveWindow {
  backlog = 0;
  /** Stream offset of the right edge last advertised. */
  edgeOff = 0;
  shift = 0;
  private readonly swsBytes: number;

  constructor(
    readonly bufBytes: number,
    mss: number,
  ) {
    this.swsBytes = Math.max(1, Math.min(bufBytes >>> 1, mss));
  }

  /** What remains of the window last advertised. */
  remaining(rcvNxtOff: number): number {
    const r = this.edgeOff - rcvNxtOff;
    return r > 0 ? r : 0;
  }

  /** The window we would advertise now, in bytes (before rounding to the field). */
  compute(rcvNxtOff: number): number {
    let free = this.bufBytes - this.backlog;
    if (free < 0) free = 0;
    const max = 65535 * (1 << this.shift);
    if (free > max) free = max;
    const cur = this.remaining(rcvNxtOff);
    if (free <= cur) return cur;
    // RFC 9293 §3.8.6.2.2: advance the edge by a worthwhile amount or not at all.
    if (free - cur < this.swsBytes) return cur;
    return free;
  }

  /** The 16-bit window field for a non-SYN segment; records the edge it advertises. */
  field(rcvNxtOff: number): number {
    const w = this.compute(rcvNxtOff);
    const cur = this.remaining(rcvNxtOff);
    const unit = 1 << this.shift;
    let f = Math.floor(w / unit);
    if (f * unit < cur) f = Math.ceil(cur / unit);
    if (f > 65535) f = 65535;
    const edge = rcvNxtOff + f * unit;
    if (edge > this.edgeOff) this.edgeOff = edge;
    return f;
  }

  /**
   * True iff the window has opened enough that the guest should hear of it
   * now rather than with the next ACK: Linux __tcp_cleanup_rbuf()'s rule, the
   * remaining window is at most half the buffer and the new one is at least
   * twice as large (from zero: at least the SWS threshold).
   */
  updateWorthSending(rcvNxtOff: number): boolean {
    const cur = this.remaining(rcvNxtOff);
    const w = this.compute(rcvNxtOff);
    return w > cur && 2 * cur <= this.bufBytes && w >= 2 * cur;
  }
}
