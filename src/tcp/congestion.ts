/**
 * Congestion control towards the guest: RFC 5681 slow start and congestion
 * avoidance, fast retransmit / fast recovery with the NewReno modification
 * (RFC 6582), initial window of RFC 6928.
 *
 * The guest is on a local link, so losses are rare (a full TAP queue) and
 * cheap to recover from, but they happen in bursts of whole 64 KB
 * super-frames; the window must come back quickly. Byte counting follows
 * Linux rather than RFC 5681's "at most SMSS per ACK" (RFC 3465 L): with
 * super-frames one ACK routinely covers 45 segments, and capping slow start
 * at one SMSS per ACK would take hundreds of round trips to open a MB window.
 * Linux's tcp_slow_start() adds every acknowledged byte too.
 *
 * The window only grows while it is the limit (RFC 7661 §4.1, Linux
 * tcp_is_cwnd_limited): when the host application sends less than cwnd
 * allows, an ever-growing cwnd would later permit a burst nothing has tested.
 *
 * This module only does arithmetic on byte counts; the endpoint decides what
 * to retransmit and when (endpoint.ts, "Loss recovery").
 */
import { seqGe } from './seq.js';

/** RFC 6928 §2: IW = min(10·MSS, max(2·MSS, 14600)). */
export function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}

export class NewReno {
  cwnd: number;
  /** RFC 5681 §3.1: "arbitrarily high" initially. */
  ssthresh = Number.MAX_SAFE_INTEGER;
  /** In fast recovery (RFC 6582 §3.2) until an ACK reaches `recover`. */
  inRecovery = false;
  /** RFC 6582 `recover`: the highest sequence number sent when loss was detected. */
  recover = 0;
  /** Bytes acknowledged in congestion avoidance since cwnd last grew by one MSS. */
  private avoidanceBytes = 0;

  /** RFC 6582 §3.2 step 1: `recover` starts at the initial send sequence number. */
  constructor(
    public mss: number,
    iss: number,
  ) {
    this.cwnd = initialWindow(mss);
    this.recover = iss;
  }

  /** The handshake fixed the MSS: restart from the initial window of that MSS. */
  setMss(mss: number): void {
    this.mss = mss;
    this.cwnd = initialWindow(mss);
  }

  /**
   * A cumulative ACK outside recovery acknowledged `acked` new bytes.
   * `cwndLimited`: the flight before this ACK was using the window.
   */
  onAck(acked: number, cwndLimited: boolean): void {
    if (!cwndLimited || acked <= 0) return;
    if (this.cwnd < this.ssthresh) {
      // RFC 5681 §3.1 slow start, counting every byte (see top of file).
      const room = this.ssthresh - this.cwnd;
      if (acked <= room) {
        this.cwnd += acked;
        return;
      }
      this.cwnd = this.ssthresh;
      acked -= room;
    }
    // RFC 5681 §3.1 congestion avoidance, eq. (3) in byte-counting form (RFC 3465 §2.1).
    this.avoidanceBytes += acked;
    while (this.avoidanceBytes >= this.cwnd) {
      this.avoidanceBytes -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  /**
   * RFC 5681 §3.2 steps 2–3 (with RFC 6582 §3.2 step 2): loss detected by
   * duplicate ACKs; `flight` is FlightSize, `highestSent` becomes `recover`.
   */
  enterRecovery(flight: number, highestSent: number): void {
    this.ssthresh = Math.max(flight >>> 1, 2 * this.mss);
    this.cwnd = this.ssthresh + 3 * this.mss;
    this.inRecovery = true;
    this.recover = highestSent;
    this.avoidanceBytes = 0;
  }

  /** RFC 6582 §3.2 step 2: a new recovery may start only once the ACK passed `recover`. */
  mayEnterRecovery(ack: number): boolean {
    return !this.inRecovery && seqGe(ack, this.recover);
  }

  /** RFC 5681 §3.2 step 4: each further duplicate ACK inflates cwnd by one MSS. */
  onDupAckInRecovery(): void {
    this.cwnd += this.mss;
  }

  /** True iff `ack` ends recovery (RFC 6582 §3.2 step 5: a "full acknowledgment"). */
  isFullAck(ack: number): boolean {
    return seqGe(ack, this.recover);
  }

  /** RFC 6582 §3.2 step 5, partial ACK: deflate by the bytes acknowledged, add back one MSS. */
  onPartialAck(acked: number): void {
    this.cwnd -= acked;
    if (acked >= this.mss) this.cwnd += this.mss;
    if (this.cwnd < this.mss) this.cwnd = this.mss;
  }

  /** RFC 6582 §3.2 step 5, full ACK: option (1), cwnd = min(ssthresh, FlightSize + SMSS). */
  exitRecovery(flight: number): void {
    this.cwnd = Math.min(this.ssthresh, Math.max(flight, this.mss) + this.mss);
    this.inRecovery = false;
  }

  /**
   * RFC 5681 §3.1 eq. (4) and the loss window: the retransmission timer
   * expired. RFC 6582 §3.2 step 4 (the "recover" after a timeout) is the
   * caller's `highestSent`, so duplicate ACKs of data sent before the timeout
   * do not start a second, spurious fast retransmit.
   */
  onTimeout(flight: number, highestSent: number): void {
    this.ssthresh = Math.max(flight >>> 1, 2 * this.mss);
    this.cwnd = this.mss;
    this.inRecovery = false;
    this.recover = highestSent;
    this.avoidanceBytes = 0;
  }
}
