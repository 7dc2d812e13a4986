/**
 * The endpoint's deadlines. There is no timer object anywhere: each slot is
 * an absolute time in ms (Infinity = disarmed) and the relay asks for the
 * earliest through `nextDeadline` (docs/architecture.md, Time).
 *
 *   rtx      retransmission (RFC 6298) or zero-window probe (RFC 9293 §3.8.6.1),
 *            never both: probing only runs while nothing is in flight
 *   idle     keepalive (RFC 9293 §3.8.4) or the FIN-WAIT-2 timeout
 *   linger   TIME-WAIT (2·MSL)
 *   flush    output held back during input() that nobody flushed yet
 *   ack      a delayed ACK (delayedAckMs) that no data has carried yet
 */

export const RtxMode = {
  OFF: 0,
  RETRANSMIT: 1,
  PERSIST: 2,
} as const;

export type RtxModeValue = (typeof RtxMode)[keyof typeof RtxMode];

export class TcpTimers {
  rtxAt = Infinity;
  rtxMode: RtxModeValue = RtxMode.OFF;
  idleAt = Infinity;
  lingerAt = Infinity;
  flushAt = Infinity;
  ackAt = Infinity;

  get next(): number {
    let t = this.rtxAt;
    if (this.idleAt < t) t = this.idleAt;
    if (this.lingerAt < t) t = this.lingerAt;
    if (this.flushAt < t) t = this.flushAt;
    if (this.ackAt < t) t = this.ackAt;
    return t;
  }

  armRtx(mode: RtxModeValue, atMs: number): void {
    this.rtxMode = mode;
    this.rtxAt = atMs;
  }

  stopRtx(): void {
    this.rtxMode = RtxMode.OFF;
    this.rtxAt = Infinity;
  }

  clear(): void {
    this.stopRtx();
    this.idleAt = Infinity;
    this.lingerAt = Infinity;
    this.flushAt = Infinity;
    this.ackAt = Infinity;
  }
}
